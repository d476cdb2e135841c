// Runs in its own vitest worker, so the module really has not been loaded yet.
import { expect, it } from 'vitest';
import { Conv2d, decodeImage, init, isInitialized, NotInitializedError, preprocess, Tensor } from '../ts/index.js';

it('using the API before init() gives a clear NotInitializedError, and init() then works', async () => {
  expect(isInitialized()).toBe(false);
  expect(() => Tensor.zeros([2])).toThrow(NotInitializedError);
  expect(() => Tensor.zeros([2])).toThrow('Error in Tensor.zeros: the WebAssembly module is not loaded yet: call `await init()` first');
  expect(() => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 1 })).toThrow(/call `await init\(\)` first/);
  await expect(decodeImage(new Uint8Array([0xff, 0xd8, 0xff]))).rejects.toThrow(NotInitializedError);
  await expect(preprocess({ data: new Uint8Array(3), width: 1, height: 1 })).rejects.toThrow('Error in preprocess: the WebAssembly module is not loaded yet');
  await init();
  expect(isInitialized()).toBe(true);
  using t = Tensor.fromArray([1, 2], [1, 2]);
  expect(t.toArray()).toEqual(new Float32Array([1, 2]));
});

it('init() is idempotent: once loaded, later calls (whatever their source) are no-ops', async () => {
  await expect(init({ wasm: new Uint8Array([0, 1, 2]) })).resolves.toBeUndefined();
});
