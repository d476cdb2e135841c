// runWorker takes only the threads the pool handed out: any other integer from JavaScript
// is refused with an error, never dereferenced (it used to be `Box::from_raw` on anything).
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as threaded from '../ts/wasm-threads/inception_wasm.js';

it('runWorker with an address no pool handed out → an error naming it; the instance keeps working', () => {
  const module = new WebAssembly.Module(readFileSync(new URL('../ts/wasm-threads/inception_wasm_bg.wasm', import.meta.url)));
  threaded.initSync({ module, memory: new WebAssembly.Memory({ initial: 256, maximum: 4096, shared: true }) });
  for (const bogus of [0, 8, 12345, 2 ** 31]) {
    expect(() => threaded.runWorker(bogus)).toThrow(/is not a thread waiting for a worker/);
  }
  const b = new threaded.Buffer(4);
  expect(b.len()).toBe(4);
  b.free();
});
