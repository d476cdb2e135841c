// Where creating shared memory fails (iOS Safari: `RangeError: Out of memory`), init falls
// back to the single-threaded build with one warning.
import { expect, it, vi } from 'vitest';
import * as lib from '../dist/index.js';

it('init({ threads: 2 }) when shared memory cannot be created: one warning, one thread, results computed', async () => {
  const Memory = WebAssembly.Memory;
  const refusing = function (this: unknown, descriptor: WebAssembly.MemoryDescriptor) {
    if (descriptor.shared === true) throw new RangeError('WebAssembly.Memory(): could not allocate memory');
    return new Memory(descriptor);
  } as unknown as typeof WebAssembly.Memory;
  refusing.prototype = Memory.prototype;
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  WebAssembly.Memory = refusing;
  let warnings: unknown[][];
  try {
    await lib.init({ threads: 2 });
  } finally {
    WebAssembly.Memory = Memory;
    warnings = [...warn.mock.calls];
    warn.mockRestore();
  }
  expect(warnings).toHaveLength(1);
  expect(String(warnings[0]![0])).toMatch(/using 1 thread instead of 2: shared memory .* could not be created/);
  expect(lib.threadCount()).toBe(1);
  using t = lib.Tensor.fromArray([1, 2, 3], [3]);
  expect(t.toArray()).toEqual(new Float32Array([1, 2, 3]));
});
