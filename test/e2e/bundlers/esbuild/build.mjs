// An app bundled with esbuild. esbuild bundles the package's code but does not copy the
// files that code finds with new URL('./…', import.meta.url): the package looks for them
// next to the bundle, so the build copies them there — dist/wasm*/ and dist/worker.js.
// (Or serve the .wasm files anywhere and pass init({ wasm, imageWasm }).)
import { cpSync, readdirSync } from 'node:fs';
import { build } from 'esbuild';

await build({ entryPoints: ['main.js', 'app-worker.js'], bundle: true, format: 'esm', outdir: 'dist' });

const pkg = 'node_modules/inception-wasm/dist';
for (const name of readdirSync(pkg)) {
  if (name.startsWith('wasm') || name === 'worker.js') cpSync(`${pkg}/${name}`, `dist/${name}`, { recursive: true });
}
