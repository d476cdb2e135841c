import { cpSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defineConfig, type Options } from 'tsup';

type Plugin = NonNullable<Options['esbuildPlugins']>[number];

/**
 * wasm-bindgen's glue locates its `.wasm` with `new URL('<name>_bg.wasm', import.meta.url)`
 * in `__wbg_init`, a path the package never takes (ts/wasm-source.ts finds and compiles
 * the module, then calls `initSync`). Left in, dist/index.js would name files next to
 * itself that do not exist: webpack refuses to build ("Can't resolve
 * 'inception_wasm_bg.wasm'") and Vite warns. Replaced by a throw; checked, so glue of
 * another shape fails the build instead of shipping a dangling URL.
 */
const glueWithoutDefaultUrl: Plugin = {
  name: 'glue-without-default-url',
  setup(build) {
    build.onLoad({ filter: /[\\/]ts[\\/]wasm(-[a-z-]+)?[\\/]inception_(wasm|image)\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const url = /new URL\('inception_(wasm|image)_bg\.wasm', import\.meta\.url\)/g;
      const found = source.match(url)?.length ?? 0;
      if (found !== 1) throw new Error(`${args.path}: expected one default .wasm URL in the wasm-bindgen glue, found ${found}`);
      const contents = source.replace(url, "(() => { throw new Error('inception-wasm: the module is loaded by init()'); })()");
      return { contents, loader: 'js' };
    });
  },
};

/**
 * `PROFILE_DIST=1 npx tsup`: the package built into target/profile/dist/ over the
 * threaded build with per-stage timing (`WASM_BUILDS=profile`, in target/profile/), for
 * bench/threads-profile.mjs. Its glue has two more imports, so the bundle must be its own.
 */
const profile: Options = {
  entry: ['ts/index.ts', 'ts/worker.ts'],
  format: ['esm'],
  target: 'es2022',
  keepNames: true,
  outDir: 'target/profile/dist',
  esbuildPlugins: [{
    name: 'profile-glue',
    setup(build) {
      build.onResolve({ filter: /\/wasm-threads\/inception_wasm\.js$/ }, () => ({ path: path.resolve('target/profile/wasm-threads/inception_wasm.js') }));
    },
  }],
  async onSuccess() {
    cpSync('ts/wasm/inception_wasm_bg.wasm', 'target/profile/dist/wasm/inception_wasm_bg.wasm');
    cpSync('target/profile/wasm-threads/inception_wasm_bg.wasm', 'target/profile/dist/wasm-threads/inception_wasm_bg.wasm');
  },
};

export default process.env.PROFILE_DIST ? profile : defineConfig([{
  entry: ['ts/index.ts'],
  format: ['esm', 'cjs'],
  // stripInternal: members marked @internal (the layers' plumbing, the glue's types) stay out
  // of the published declarations.
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  target: 'es2022',
  // CommonJS has no import.meta.url: tsup's shim derives it from __filename, so the
  // loader finds dist/wasm/*.wasm the same way from both formats.
  shims: true,
  // Error messages and summaries name layers by class name; our Conv2d/Linear collide
  // with wasm-bindgen's classes of the same name, which esbuild would otherwise rename.
  keepNames: true,
  // loadPth's inflate (fflate, a devDependency) is bundled: the package keeps no runtime
  // dependencies. Only its synchronous Inflate is reachable from ts/pth/zip.ts.
  noExternal: ['fflate'],
  outDir: 'dist',
  esbuildPlugins: [glueWithoutDefaultUrl],
  async onSuccess() {
    // The relaxed builds ship only their .wasm: their glue is the plain builds' own.
    for (const folder of ['wasm', 'wasm-relaxed', 'wasm-threads', 'wasm-threads-relaxed']) {
      cpSync(`ts/${folder}/inception_wasm_bg.wasm`, `dist/${folder}/inception_wasm_bg.wasm`);
    }
    // The image module: its glue is bundled, its .wasm is fetched on the first image call.
    cpSync('ts/wasm-image/inception_image_bg.wasm', 'dist/wasm-image/inception_image_bg.wasm');
    // `inception-wasm bench --serve`: the benchmark page, served from the installed package.
    cpSync('ts/cli/bench-page', 'dist/bench-page', { recursive: true });
  },
}, {
  // The threaded build's worker: loaded by URL (`new Worker(new URL('./worker.js', …))`),
  // so it is its own ES module next to index.js, in both Node and browsers.
  entry: ['ts/worker.ts'],
  format: ['esm'],
  target: 'es2022',
  sourcemap: true,
  outDir: 'dist',
  esbuildPlugins: [glueWithoutDefaultUrl],
}, {
  // The command-line tool (package.json "bin"): it imports the public API as '../index.js',
  // which stays an import of the package's own dist/index.js (one copy of the library).
  entry: { cli: 'ts/cli/main.ts' },
  format: ['esm'],
  target: 'es2022',
  platform: 'node',
  outDir: 'dist',
  banner: { js: '#!/usr/bin/env node' },
  esbuildPlugins: [{
    name: 'cli-uses-the-package',
    setup(build) {
      build.onResolve({ filter: /^\.\.\/index\.js$/ }, () => ({ path: './index.js', external: true }));
    },
  }],
}]);
