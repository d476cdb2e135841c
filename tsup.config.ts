import { cpSync } from 'node:fs';
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['ts/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  // CommonJS has no import.meta.url: tsup's shim derives it from __filename, so the
  // loader finds dist/wasm/*.wasm the same way from both formats.
  shims: true,
  // Error messages and summaries name layers by class name; our Conv2d/Linear collide
  // with wasm-bindgen's classes of the same name, which esbuild would otherwise rename.
  keepNames: true,
  outDir: 'dist',
  async onSuccess() {
    cpSync('ts/wasm/inception_wasm_bg.wasm', 'dist/wasm/inception_wasm_bg.wasm');
  },
});
