/** `GoogLeNet.forwardFeatures`, `Tensor.item`, `Module.modules`. */
import { beforeAll, expect, it } from 'vitest';
import { GoogLeNet, init, Linear, ShapeError, Tensor } from '../ts/index.js';

beforeAll(() => init());

it('forwardFeatures: the [N, 1024] pooled embedding that fc turns into the logits', () => {
  for (const variant of ['relu', 'torchvision'] as const) {
    using model = new GoogLeNet({ variant, seed: 3, numClasses: 10 });
    const data = Float32Array.from({ length: 2 * 3 * 96 * 96 }, (_, i) => Math.sin(i * 0.37));
    using x = Tensor.fromArray(data, [2, 3, 96, 96]);
    using features = model.forwardFeatures(x);
    expect(features.shape).toEqual([2, 1024]);
    using logits = model.forward(x);
    const fc = [...model.children()].find(([name]) => name === 'fc')![1] as Linear;
    using again = fc.forward(features);
    expect(again.toArray()).toEqual(logits.toArray());
    // Pooled after a ReLU (relu variant, torchvision's BasicConv2d): no negative features.
    expect(Math.min(...features.toArray())).toBeGreaterThanOrEqual(0);
  }
});

it('item() reads a one-element tensor and names the shape of any other', () => {
  using one = Tensor.fromArray([2.5], [1, 1]);
  expect(one.item()).toBe(2.5);
  using two = Tensor.fromArray([1, 2], [2]);
  expect(() => two.item()).toThrow(ShapeError);
  expect(() => two.item()).toThrow('only a one-element tensor has an item, but this one has shape [2] (2 elements)');
});

it('modules() yields namedModules() without the names, this module first', () => {
  using model = new GoogLeNet({ seed: 0, numClasses: 5 });
  const named = Array.from(model.namedModules(), ([, m]) => m);
  expect([...model.modules()]).toEqual(named);
  expect([...model.modules()][0]).toBe(model);
});
