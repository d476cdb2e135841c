// Vite needs nothing for inception-wasm itself: `vite build` copies each file the package
// names with new URL('./…', import.meta.url) (the .wasm builds, the threads' worker), and
// the dev server's dependency optimizer points those URLs back into
// node_modules/inception-wasm — no optimizeDeps.exclude, no worker.format.
import { defineConfig } from 'vite';

// Threads only: a cross-origin isolated page (these two headers), init({ threads }) in a worker.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  server: { headers: isolation },
  preview: { headers: isolation },
});
