// webpack 5 needs nothing for inception-wasm: it follows the package's
// new URL('./…', import.meta.url) references as asset modules, copying each .wasm and the
// threads' worker script into the output, and bundles the app's own worker.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export default {
  mode: 'production',
  context: here,
  entry: './main.js',
  output: { path: path.join(here, 'dist'), clean: true },
};
