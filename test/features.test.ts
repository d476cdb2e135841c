/** `GoogLeNet.forwardFeatures`, `Tensor.item`, `Module.modules`. */
import { beforeAll, expect, it } from 'vitest';
import { Dropout, GoogLeNet, init, Linear, ShapeError, Tensor } from '../ts/index.js';

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

it('dropoutAux: the auxiliary heads\' dropout (torchvision\'s dropout_aux), accepted on every variant and checked', () => {
  using tv = new GoogLeNet({ variant: 'torchvision', auxLogits: true, numClasses: 4, dropout: 0, dropoutAux: 0.25 });
  const p = (name: string) => (Array.from(tv.namedModules()).find(([n]) => n === name)![1] as Dropout).p;
  expect([p('dropout'), p('aux1.dropout'), p('aux2.dropout')]).toEqual([0, 0.25, 0.25]);
  using defaults = new GoogLeNet({ variant: 'torchvision', auxLogits: true, numClasses: 4 });
  expect((Array.from(defaults.namedModules()).find(([n]) => n === 'aux1.dropout')![1] as Dropout).p).toBe(0.7);
  using relu = new GoogLeNet({ numClasses: 4, dropoutAux: 0 }); // no heads: accepted, unused
  expect(relu.aux1).toBeUndefined();
  expect(() => new GoogLeNet({ dropoutAux: 1.5 })).toThrow('Error in GoogLeNet: dropoutAux must be in [0, 1], but got 1.5');
});
