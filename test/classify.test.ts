/** `softmax`, `classify` / `model.classify` and `IMAGENET_CLASSES`. */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { classify, Conv2d, GoogLeNet, IMAGENET_CLASSES, init, Linear, memoryInfo, preprocess, ShapeError, softmax, Tensor, topk, ValueError } from '../ts/index.js';

const photo = readFileSync(new URL('./fixtures/images/chelsea_q90.jpg', import.meta.url));
const other = readFileSync(new URL('./fixtures/images/astronaut_png.png', import.meta.url));

beforeAll(() => init());

it('IMAGENET_CLASSES is torchvision\'s list, in index order', () => {
  const names = JSON.parse(readFileSync(new URL('./fixtures/imagenet_classes.json', import.meta.url), 'utf8')) as string[];
  expect(IMAGENET_CLASSES).toEqual(names);
  expect([IMAGENET_CLASSES[0], IMAGENET_CLASSES[281], IMAGENET_CLASSES[999]]).toEqual(['tench', 'tabby', 'toilet tissue']);
  expect(Object.isFrozen(IMAGENET_CLASSES)).toBe(true);
});

describe('softmax', () => {
  it('matches a float64 reference over the last dimension, for any rank', () => {
    const x = [1, 2, 3, -1000, 0, 1000, 5, 5, 5, 0.5, -0.5, 2];
    for (const shape of [[12], [4, 3], [2, 2, 3]]) {
      using t = Tensor.fromArray(x, shape);
      using p = softmax(t);
      expect(p.shape).toEqual(shape);
      const got = p.toArray();
      for (let r = 0; r < 4; r++) {
        const row = x.slice(r * 3, r * 3 + 3);
        if (shape.length === 1) break;
        const m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m));
        const s = e.reduce((a, b) => a + b);
        e.forEach((v, i) => expect(got[r * 3 + i]).toBe(Math.fround(v / s)));
      }
      if (shape.length === 1) expect(got.reduce((a, b) => a + b)).toBeCloseTo(1, 6);
    }
  });

  it('gives a row with a NaN all NaN (as PyTorch), keeps huge logits finite, and checks its input', () => {
    using t = Tensor.fromArray([NaN, 1, 2, 3e38, -3e38, 0], [2, 3]);
    using p = softmax(t);
    const got = Array.from(p.toArray());
    expect(got.slice(0, 3).every(Number.isNaN)).toBe(true);
    expect(got.slice(3)).toEqual([1, 0, 0]);
    expect(() => softmax([1, 2] as never)).toThrow(ShapeError);
    using empty = Tensor.zeros([2, 0]);
    expect(() => softmax(empty)).toThrow('last dimension of at least 1');
  });
});

describe('classify', () => {
  it('returns the top 5 by default: ImageNet names, probabilities best first, equal to preprocess → forward → softmax → topk', async () => {
    using model = new GoogLeNet({ seed: 0 });
    const top = await classify(model, photo);
    expect(top).toHaveLength(5);
    using x = await preprocess(photo);
    using logits = model.forward(x);
    using p = softmax(logits);
    const expected = topk(p, 5)[0]!.map(({ index, value }) => ({ index, label: IMAGENET_CLASSES[index], probability: value }));
    expect(top).toEqual(expected);
    for (let i = 1; i < 5; i++) expect(top[i]!.probability).toBeLessThanOrEqual(top[i - 1]!.probability);
    expect(await model.classify(photo)).toEqual(top);
  });

  it('gives one list per image for an array, and honours topk and labels', async () => {
    using model = new GoogLeNet({ seed: 0, numClasses: 10 });
    const both = await model.classify([photo, other], { topk: 3 });
    expect(both).toHaveLength(2);
    for (const row of both) {
      expect(row.map((r) => r.label)).toEqual(row.map((r) => String(r.index)));
    }
    // The same classes as one image at a time; probabilities to rounding (a batch runs
    // the 3×3 convolutions of its 7×7 maps on F(4×4) Winograd, one image on F(2×2)).
    const alone = await model.classify(photo, { topk: 3 });
    expect(both[0]!.map((r) => r.index)).toEqual(alone.map((r) => r.index));
    both[0]!.forEach((r, i) => expect(r.probability).toBeCloseTo(alone[i]!.probability, 5));
    const labels = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
    const named = await classify(model, photo, { labels, topk: 20 });
    expect(named).toHaveLength(10); // all of them, when topk exceeds the classes
    expect(named.map((r) => r.label)).toEqual(named.map((r) => labels[r.index]));
    expect(named.reduce((s, r) => s + r.probability, 0)).toBeCloseTo(1, 5);
  });

  it('runs in eval mode and puts back every module\'s own training flag', async () => {
    using model = new GoogLeNet({ seed: 0 });
    const evalTop = await model.classify(photo);
    model.train();
    // A mix: the whole in training mode, one block not.
    for (const [name, m] of model.namedModules()) if (name.startsWith('inception3a')) m.training = false;
    const flags = () => Array.from(model.namedModules(), ([name, m]) => `${name}:${m.training}`);
    const before = flags();
    expect(await model.classify(photo)).toEqual(evalTop);
    expect(flags()).toEqual(before);
  });

  it('refuses a model that does not return [N, classes], and frees what it made', async () => {
    using conv = new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 1 });
    const rank4 = /Error in classify: the model must return \[N, classes\] logits, but returned shape \[1, 4, 224, 224\]/;
    await expect(classify(conv, photo)).rejects.toThrow(rank4); // plans and arena made once
    const held = memoryInfo().heldBytes;
    await expect(classify(conv, photo)).rejects.toThrow(rank4);
    expect(memoryInfo().heldBytes).toBe(held);
  });

  it('checks its arguments, names what is wrong, and frees every tensor it made', async () => {
    using model = new GoogLeNet({ seed: 0, numClasses: 10 });
    await model.classify(photo); // plans and arena made once
    const held = memoryInfo().heldBytes;
    await model.classify(photo);
    expect(memoryInfo().heldBytes).toBe(held);
    await expect(classify(model, photo, { topk: 0 })).rejects.toThrow(ValueError);
    await expect(classify(model, photo, { labels: ['a', 'b'] })).rejects.toThrow('labels has 2 names, but the model has 10 classes');
    expect(memoryInfo().heldBytes, 'a failed classify frees its input and logits').toBe(held);
    await expect(classify(model, photo, { top: 3 } as object)).rejects.toThrow("unknown option 'top'");
    await expect(classify({} as never, photo)).rejects.toThrow('model must be a Module');
    using flat = new Linear({ inFeatures: 3, outFeatures: 2 });
    await expect(classify(flat, photo)).rejects.toThrow(ShapeError);
  });
});
