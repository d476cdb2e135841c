// Concurrent first calls of init() share one load: the module is compiled once.
import { expect, it, vi } from 'vitest';
import { init, isInitialized, Tensor } from '../ts/index.js';

it('three concurrent init() calls compile the module once', async () => {
  const compile = vi.spyOn(WebAssembly, 'compile');
  try {
    expect(isInitialized()).toBe(false);
    await Promise.all([init(), init(), init()]);
    expect(compile).toHaveBeenCalledTimes(1);
    await init();
    expect(compile).toHaveBeenCalledTimes(1);
  } finally {
    compile.mockRestore();
  }
  using t = Tensor.fromArray([1, 2], [2]);
  expect(t.toArray()).toEqual(new Float32Array([1, 2]));
});
