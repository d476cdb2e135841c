/**
 * A compiled plan runs with no allocation inside WebAssembly beyond the tensor it
 * returns, and WebAssembly memory stops growing after the first forward of a shape.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { native, wasmMemory } from '../ts/backend.js';
import { GoogLeNet, Inception, init, type Module, Tensor } from '../ts/index.js';

beforeAll(async () => {
  await init();
});

const allocations = (): number => native('test').allocationCount();

/** Allocations a new tensor costs (its buffer): all a steady-state forward may make. */
function tensorCost(): number {
  const before = allocations();
  Tensor.zeros([10]).dispose();
  return allocations() - before;
}

function steadyState(model: Module, shape: number[]): { perForward: number; grew: number } {
  using x = Tensor.fromArray(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25), shape);
  model.forward(x).dispose(); // compiles the plan, sizes the arena and the scratch
  model.forward(x).dispose();
  const [before, bytes] = [allocations(), wasmMemory().buffer.byteLength];
  for (let i = 0; i < 20; i++) model.forward(x).dispose();
  return { perForward: (allocations() - before) / 20, grew: wasmMemory().buffer.byteLength - bytes };
}

describe('steady state', () => {
  it('GoogLeNet x=[1,3,64,64]: a forward allocates only its output tensor, and memory does not grow', () => {
    using net = new GoogLeNet({ numClasses: 10, seed: 1 });
    expect(steadyState(net, [1, 3, 64, 64])).toEqual({ perForward: tensorCost(), grew: 0 });
  });

  it('Inception 3a x=[2,192,28,28]: the same', () => {
    using block = new Inception(192, 64, 96, 128, 16, 32, 32);
    expect(steadyState(block, [2, 192, 28, 28])).toEqual({ perForward: tensorCost(), grew: 0 });
  });
});
