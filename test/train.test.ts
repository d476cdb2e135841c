/**
 * Training through the public contract (issue 16): parameters and their gradients,
 * backward's rules and errors, BatchNorm in training mode, optimisers and their state,
 * checkpoints, and that inference after training sees the new weights. Whole networks
 * against PyTorch are test/training-cases.ts (run by test/fixtures.test.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Adam,
  AdamW,
  AutogradError,
  BatchNorm2d,
  Conv2d,
  crossEntropy,
  Flatten,
  GoogLeNet,
  init,
  Linear,
  loadCheckpoint,
  manualSeed,
  MaxPool2d,
  Parameter,
  ReLU,
  saveCheckpoint,
  Sequential,
  SGD,
  ShapeError,
  StateDictError,
  Tensor,
  ValueError,
} from '../ts/index.js';
import { randomArray } from './reference.js';

beforeAll(() => init());

/** A small network of every kind of layer with parameters: conv (+ReLU), BatchNorm, pool, linear. */
function smallNet(seed = 1): Sequential {
  return new Sequential(
    new Conv2d({ inChannels: 2, outChannels: 4, kernelSize: 3, padding: 1, seed }),
    new BatchNorm2d(4),
    new ReLU(),
    new MaxPool2d({ kernelSize: 2 }),
    new Flatten(),
    new Linear({ inFeatures: 4 * 3 * 3, outFeatures: 3, seed: seed + 1 }),
  );
}

const input = (n = 2, seed = 5, requiresGrad = false) => Tensor.fromArray(randomArray(n * 2 * 6 * 6, seed), [n, 2, 6, 6], { requiresGrad });

/** The loss of `net` on `x`, as a number, with the parameters as they are (no recording). */
function lossValue(net: Sequential, x: Tensor, target: number[]): number {
  net.eval();
  using y = net.forward(x);
  using l = crossEntropy(y, target);
  return l.item();
}

describe('parameters', () => {
  it('namedParameters() gives stable Parameter objects; parameters() the same ones; buffers apart', () => {
    using net = smallNet();
    const a = net.namedParameters();
    const b = net.namedParameters();
    expect(a.map(([n]) => n)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '5.weight', '5.bias']);
    a.forEach(([name, p], i) => {
      expect(p).toBeInstanceOf(Parameter);
      expect(p).toBe(b[i]![1]);
      expect(p.name).toBe(name);
      expect(p.requiresGrad).toBe(true);
      expect(p.grad).toBeNull();
    });
    expect(net.parameters()).toEqual(a.map(([, p]) => p));
    expect(net.namedBuffers().map(([n, p]) => [n, p.buffer, p.requiresGrad])).toEqual([['1.running_mean', true, false], ['1.running_var', true, false]]);
    expect(a[0]![1].shape).toEqual([4, 2, 3, 3]);
    expect(a[0]![1].kind).toBe('conv_weight');
    expect(a[0]![1].data.toArray()).toEqual(net.stateDict().get('0.weight')!.data);
  });

  it("torchvision's BasicConv2d has real conv and bn children: stateDict holds γ, β and the running statistics", () => {
    using net = new GoogLeNet({ variant: 'torchvision', numClasses: 4, seed: 3 });
    const sd = net.stateDict();
    expect(sd.get('conv1.bn.weight')!.data.some((v) => v !== 1)).toBe(true);
    expect(sd.get('conv1.bn.running_mean')!.data.some((v) => v !== 0)).toBe(true);
    const names = [...net.namedModules()].map(([n]) => n);
    expect(names).toContain('conv1.conv');
    expect(names).toContain('conv1.bn');
    expect([...net.modules()].filter((m) => m instanceof BatchNorm2d).length).toBe(57);
  });
});

describe('backward', () => {
  it('computes gradients that match finite differences, for parameters and the input', () => {
    using net = smallNet();
    for (const m of net.modules()) if (m instanceof BatchNorm2d) m.eval(); // smooth in the parameters
    const target = [0, 2];
    using x = input(2, 5, true);
    net.train();
    for (const m of net.modules()) if (m instanceof BatchNorm2d) m.eval();
    using y = net.forward(x);
    using loss = crossEntropy(y, target);
    loss.backward();
    const eps = 1e-2;
    const probe = (values: Float32Array, i: number, apply: () => void) => {
      const v = values[i]!;
      values[i] = v + eps;
      apply();
      const up = lossValue(net, x, target);
      values[i] = v - eps;
      apply();
      const down = lossValue(net, x, target);
      values[i] = v;
      apply();
      return (up - down) / (2 * eps);
    };
    for (const [name, p] of net.namedParameters()) {
      const grad = p.grad!.toArray();
      const state = net.stateDict();
      const values = state.get(name)!.data;
      for (const i of [0, Math.floor(values.length / 2), values.length - 1]) {
        const fd = probe(values, i, () => net.loadStateDict(state));
        expect(Math.abs(fd - grad[i]!), `${name}[${i}]: ${grad[i]} vs ${fd}`).toBeLessThan(2e-3 + 0.02 * Math.abs(fd));
      }
    }
    const xs = x.toArray();
    const gx = x.grad!.toArray();
    for (const i of [3, 40, 100]) {
      const fd = probe(xs, i, () => x.data.set(xs));
      expect(Math.abs(fd - gx[i]!), `x[${i}]`).toBeLessThan(2e-3 + 0.02 * Math.abs(fd));
    }
  });

  it('accumulates into .grad until zeroGrad(), which zeroes (PyTorch 1.13); frozen parameters get none', () => {
    using net = smallNet();
    net.train();
    const [w, b] = net.parameters() as [Parameter, Parameter];
    b.requiresGrad = false;
    const step = () => {
      using x = input();
      using loss = crossEntropy(net.forward(x), [1, 1]);
      loss.backward();
    };
    manualSeed(0);
    step();
    const first = w.grad!.toArray();
    expect(b.grad).toBeNull();
    net.zeroGrad();
    expect(w.grad!.toArray().every((v) => v === 0)).toBe(true);
    step();
    step();
    const twice = w.grad!.toArray();
    twice.forEach((v, i) => expect(v).toBeCloseTo(2 * first[i]!, 5));
    expect(b.grad).toBeNull();
    expect(net.namedParameters()[1]![1].requiresGrad).toBe(false); // the same object: it stays frozen
  });

  it('y.backward(gradOutput) for a non-scalar output; typed errors otherwise, and the model stays usable', () => {
    using net = smallNet();
    net.train();
    using x = input(2, 6, true);
    const y = net.forward(x);
    expect(() => y.backward()).toThrow(AutogradError);
    expect(() => y.backward(Tensor.zeros([3, 2]))).toThrow(ShapeError);
    y.backward(Tensor.fromArray([1, 0, 0, 0, 0, 0], [2, 3]));
    expect(x.grad!.shape).toEqual([2, 2, 6, 6]);
    expect(() => y.backward(Tensor.zeros([2, 3]))).toThrow(/already differentiated/);
    // A later forward replaces the saved activations: the earlier output cannot be differentiated.
    const y1 = net.forward(x);
    const y2 = net.forward(x);
    expect(() => y1.backward(Tensor.zeros([2, 3]))).toThrow(/replaced by a later forward/);
    y2.backward(Tensor.zeros([2, 3]));
    using plain = Tensor.fromArray([1], []);
    expect(() => plain.backward()).toThrow(/does not require a gradient/);
    for (const t of [y, y1, y2]) t.dispose();
  });

  it('item() works on any one-element tensor', () => {
    using a = Tensor.fromArray([2.5], []);
    using b = Tensor.fromArray([3], [1, 1]);
    expect(a.item()).toBe(2.5);
    expect(b.item()).toBe(3);
    using c = Tensor.zeros([2]);
    expect(() => c.item()).toThrow(ShapeError);
  });
});

describe('BatchNorm2d in training mode', () => {
  it('normalises with batch statistics and moves the running ones (momentum 0.1, unbiased variance)', () => {
    using bn = new BatchNorm2d(2);
    bn.loadStateDict({ weight: new Float32Array([1, 2]), bias: new Float32Array([0, 1]), running_mean: new Float32Array([0, 0]), running_var: new Float32Array([1, 1]) });
    const data = [1, 2, 3, 4, 10, 20, 30, 40, 5, 6, 7, 8, 50, 60, 70, 80];
    using x = Tensor.fromArray(data, [2, 2, 2, 2]);
    bn.train();
    using y = bn.forward(x);
    const c0 = [1, 2, 3, 4, 5, 6, 7, 8];
    const mean = c0.reduce((a, b) => a + b) / 8;
    const varB = c0.reduce((a, v) => a + (v - mean) ** 2, 0) / 8;
    expect(y.data[0]).toBeCloseTo((1 - mean) / Math.sqrt(varB + 1e-5), 5);
    const buffers = new Map(bn.namedBuffers());
    expect(buffers.get('running_mean')!.data.data[0]).toBeCloseTo(0.1 * mean, 6);
    expect(buffers.get('running_var')!.data.data[0]).toBeCloseTo(0.9 + 0.1 * varB * 8 / 7, 5);
    using one = Tensor.fromArray([1, 2], [1, 2, 1, 1]);
    expect(() => bn.forward(one)).toThrow(/more than one value per channel/);
  });
});

describe('optimisers', () => {
  it('SGD: p − lr·(g + wd·p) on the first step; inference afterwards sees the new weights', () => {
    using net = smallNet();
    using x = input();
    net.eval();
    using before = net.forward(x);
    net.train();
    const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    const w = net.parameters()[0]!;
    const w0 = w.data.toArray();
    using loss = crossEntropy(net.forward(x), [0, 1]);
    loss.backward();
    const g = w.grad!.toArray();
    opt.step();
    w.data.toArray().forEach((v, i) => expect(v).toBeCloseTo(w0[i]! - 0.1 * (g[i]! + 0.01 * w0[i]!), 6));
    net.eval();
    using after = net.forward(x);
    expect(after.toArray()).not.toEqual(before.toArray());
    using fresh = smallNet(9);
    fresh.loadStateDict(net.stateDict());
    using again = fresh.forward(x);
    expect(after.toArray()).toEqual(again.toArray());
    opt.dispose();
  });

  it('refuses bad options and parameter lists with typed errors', () => {
    using net = smallNet();
    expect(() => new SGD([], { lr: 0.1 })).toThrow(ValueError);
    expect(() => new SGD(net.parameters(), { lr: -1 })).toThrow(/lr must be/);
    expect(() => new SGD([...net.parameters(), net.parameters()[0]!], { lr: 0.1 })).toThrow(/appears twice/);
    expect(() => new SGD(net.parameters(), { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new Adam(net.parameters(), { betas: [1, 0.9] })).toThrow(/betas\[0\]/);
    expect(() => new SGD(net.namedBuffers().map(([, p]) => p), { lr: 0.1 })).toThrow(/buffer/);
    const opt = new Adam(net.parameters());
    expect(() => { opt.lr = Number.NaN; }).toThrow(ValueError);
    opt.lr = 0.01;
    expect(opt.lr).toBe(0.01);
  });

  for (const Kind of [SGD, Adam, AdamW] as const) {
    it(`${Kind.name}: stateDict() / loadStateDict() and checkpoints resume a run exactly`, () => {
      const options = { lr: 0.01, momentum: 0.9, weightDecay: 1e-3, amsgrad: Kind !== SGD };
      const step = (net: Sequential, opt: SGD | Adam, seed: number) => {
        using x = input(2, seed);
        opt.zeroGrad();
        using loss = crossEntropy(net.forward(x), [2, 0]);
        loss.backward();
        opt.step();
      };
      using a = smallNet();
      a.train();
      const optA = new Kind(a.parameters(), options);
      step(a, optA, 1);
      step(a, optA, 2);
      const bytes = saveCheckpoint(a, optA, { epoch: '2' });
      const state = optA.stateDict();
      expect(state.state.size).toBe(6);
      step(a, optA, 3);
      // Resume: a fresh model and optimiser from the checkpoint take the same third step.
      using b = smallNet(7);
      b.train();
      const optB = new Kind(b.parameters(), { lr: 1 });
      expect(loadCheckpoint(bytes, b, optB).epoch).toBe('2');
      expect(optB.lr).toBe(0.01);
      step(b, optB, 3);
      const [sa, sb] = [a.stateDict(), b.stateDict()];
      for (const [k, t] of sa) expect(sb.get(k)!.data, k).toEqual(t.data);
      // The same through stateDict() directly.
      using c = smallNet(8);
      c.loadStateDict(loadCheckpointModelOnly(bytes));
      c.train();
      const optC = new Kind(c.parameters(), options);
      optC.loadStateDict(state);
      step(c, optC, 3);
      for (const [k, t] of c.stateDict()) expect(t.data, k).toEqual(sa.get(k)!.data);
      expect(() => loadCheckpoint(bytes, b, new (Kind === SGD ? Adam : SGD)(b.parameters(), { lr: 0.1 }))).toThrow(StateDictError);
      for (const o of [optA, optB, optC]) o.dispose();
    });
  }
});

/** A checkpoint's model weights (the `model.` keys), for loadStateDict. */
function loadCheckpointModelOnly(bytes: Uint8Array): Map<string, { shape: readonly number[]; data: Float32Array }> {
  using tmp = smallNet(11);
  loadCheckpoint(bytes, tmp);
  return tmp.stateDict();
}

describe('GoogLeNet({ inChannels })', () => {
  it('takes gray inputs with no copying; fromStateDict infers it; transformInput needs 3', () => {
    using net = new GoogLeNet({ variant: 'torchvision', numClasses: 10, inChannels: 1, auxLogits: true, seed: 5 });
    expect(net.stateDict().get('conv1.conv.weight')!.shape).toEqual([64, 1, 7, 7]);
    using x = Tensor.fromArray(randomArray(2 * 32 * 32, 1), [2, 1, 32, 32]);
    using y = net.forward(x);
    expect(y.shape).toEqual([2, 10]);
    using again = GoogLeNet.fromStateDict(net.stateDict(), { auxLogits: true });
    expect(again.inChannels).toBe(1);
    using z = again.forward(x);
    expect(z.toArray()).toEqual(y.toArray());
    expect(() => new GoogLeNet({ variant: 'torchvision', inChannels: 1, transformInput: true })).toThrow(/3 RGB channels/);
    expect(() => new GoogLeNet({ inChannels: 0 })).toThrow(ValueError);
  });
});

describe('transfer learning', () => {
  it('a frozen base in eval mode runs its inference plan; a head trains on forwardFeatures', () => {
    using base = new GoogLeNet({ variant: 'torchvision', numClasses: 5, seed: 4 });
    for (const p of base.parameters()) p.requiresGrad = false;
    using head = new Linear({ inFeatures: 1024, outFeatures: 2, seed: 2 });
    head.train();
    const opt = new SGD(head.parameters(), { lr: 1e-5 }); // the features are large (‖f‖² ≈ 10^5)
    using x = Tensor.fromArray(randomArray(2 * 3 * 64 * 64, 3), [2, 3, 64, 64]);
    const losses: number[] = [];
    for (let i = 0; i < 5; i++) {
      using f = base.forwardFeatures(x);
      expect(f.requiresGrad).toBe(false);
      opt.zeroGrad();
      using loss = crossEntropy(head.forward(f), [0, 1]);
      losses.push(loss.item());
      loss.backward();
      opt.step();
    }
    expect(losses[4]!).toBeLessThan(losses[0]!);
    expect(base.parameters().every((p) => p.grad === null)).toBe(true);
    opt.dispose();
  });
});
