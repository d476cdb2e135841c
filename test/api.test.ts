import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BatchNorm2d,
  bottleneck,
  concat,
  Conv2d,
  crossEntropy,
  convWeightCount,
  DisposedError,
  Dropout,
  GoogLeNet,
  googlenetLoss,
  GRAY_WEIGHTS,
  Inception,
  init,
  initParameters,
  Linear,
  manualSeed,
  MaxPool2d,
  type Module,
  ReLU,
  rgbToGray,
  Sequential,
  ShapeError,
  spindle,
  StateDictError,
  type StateTensor,
  summary,
  Tensor,
  topk,
  ValueError,
} from '../ts/index.js';
import { randomArray } from './reference.js';

beforeAll(() => init());

const rand = randomArray;

describe('init', () => {
  it('is idempotent: later calls after the load resolve without loading again', async () => {
    const compile = vi.spyOn(WebAssembly, 'compile');
    try {
      await Promise.all([init(), init(), init()]);
      expect(compile).not.toHaveBeenCalled();
    } finally {
      compile.mockRestore();
    }
    using t = Tensor.fromArray([1, 2], [2]);
    expect(t.toArray()).toEqual(new Float32Array([1, 2]));
  });
});

describe('seed §1–2: 1×1 convolutions', () => {
  it('rgbToGray fuses channels with 0.2989, 0.5870, 0.1140', () => {
    using gray = rgbToGray();
    using x = Tensor.fromArray([1, 0, 0.5, 0, 1, 0.5, 0, 0, 0.5], [1, 3, 1, 3]);
    using y = gray.forward(x);
    expect(y.shape).toEqual([1, 1, 1, 3]);
    const [r, g, b] = GRAY_WEIGHTS;
    const want = [r, g, 0.5 * (r + g + b)].map(Math.fround);
    y.toArray().forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
  });

  it("reproduces the seed's parameter counts: 221,184 vs 129,024 weights", () => {
    using plain = new Conv2d({ inChannels: 192, outChannels: 128, kernelSize: 3, padding: 1, bias: false });
    using reduced = bottleneck({ inChannels: 192, midChannels: 96, outChannels: 128, bias: false });
    expect(plain.numParameters()).toBe(221_184);
    expect(reduced.numParameters()).toBe(129_024);
    expect(convWeightCount(192, 128, 3)).toBe(221_184);
    expect(convWeightCount(192, 96, 1) + convWeightCount(96, 128, 3)).toBe(129_024);
    using withBias = bottleneck({ inChannels: 192, midChannels: 96, outChannels: 128 });
    expect(withBias.numParameters()).toBe(129_248);
  });

  it('bottleneck narrows and spindle widens, both keep the spatial size', () => {
    using b = bottleneck({ inChannels: 16, midChannels: 4, outChannels: 12 });
    using s = spindle({ inChannels: 4, midChannels: 16, outChannels: 6, kernelSize: 5 });
    expect(b.outputShape([1, 16, 9, 7])).toEqual([1, 12, 9, 7]);
    expect(s.outputShape([2, 4, 9, 7])).toEqual([2, 6, 9, 7]);
    expect([...b.stateDict().keys()]).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    expect(() => bottleneck({ inChannels: 4, midChannels: 8, outChannels: 4 })).toThrow(ValueError);
    expect(() => spindle({ inChannels: 8, midChannels: 4, outChannels: 8 })).toThrow(/narrow → wide → narrow/);
  });
});

describe('Inception (seed §3)', () => {
  it('concatenates four branches: output channels = ch1x1 + ch3x3 + ch5x5 + poolProj', () => {
    using m = new Inception(192, 64, 96, 128, 16, 32, 32);
    expect(m.outChannels).toBe(256);
    expect(m.outputShape([2, 192, 28, 28])).toEqual([2, 256, 28, 28]);
    expect(m.numParameters()).toBe(163_696 + 0); // the fixture's param_count for this block
    expect(m.namedParameters().map(([k]) => k)).toEqual([
      'branch1.weight', 'branch1.bias', 'branch2.0.weight', 'branch2.0.bias', 'branch2.1.weight', 'branch2.1.bias',
      'branch3.0.weight', 'branch3.0.bias', 'branch3.1.weight', 'branch3.1.bias', 'branch4.1.weight', 'branch4.1.bias',
    ]);
  });

  it('ReLU variant equals the seed variant with ReLU applied after every conv (all 14 channels)', () => {
    using plain = new Inception(8, 4, 3, 5, 2, 3, 2, { activation: null, seed: 5 });
    using relu = new Inception(8, 4, 3, 5, 2, 3, 2, { activation: 'relu', seed: 5 });
    relu.loadStateDict(plain.stateDict());
    using x = Tensor.fromArray(rand(2 * 8 * 6 * 5, 1), [2, 8, 6, 5]);
    using yr = relu.forward(x);
    // The seed variant's own layers, one by one, with a ReLU after each conv.
    const layer = (branch: Sequential, i: number) => branch.children()[i]![1];
    const reluOf = (t: Tensor) => {
      const out = Tensor.fromArray(t.toArray().map((v) => Math.max(0, v)), t.shape);
      t.dispose();
      return out;
    };
    const chain = (input: Tensor, ...steps: ((t: Tensor) => Tensor)[]) => steps.reduce((t, step) => {
      const next = step(t);
      if (t !== input) t.dispose();
      return next;
    }, input);
    const conv = (m: Module) => (t: Tensor) => reluOf(m.forward(t));
    const branches = [
      chain(x, conv(plain.branch1)),
      chain(x, conv(layer(plain.branch2, 0)), conv(layer(plain.branch2, 1))),
      chain(x, conv(layer(plain.branch3, 0)), conv(layer(plain.branch3, 1))),
      chain(x, (t) => layer(plain.branch4, 0).forward(t), conv(layer(plain.branch4, 1))),
    ];
    using want = concat(branches);
    for (const b of branches) b.dispose();
    expect(yr.shape).toEqual([2, 14, 6, 5]);
    expect(yr.toArray()).toEqual(want.toArray());
  });
});

describe('GoogLeNet (seed §4, §7)', () => {
  it('has the seed numbers: 6,994,392 parameters and 1,569,826,816 MACs at 224×224', () => {
    using m = new GoogLeNet({ variant: 'seed' });
    const s = summary(m, [1, 3, 224, 224]);
    expect(s.totalParams).toBe(6_994_392);
    expect(s.totalMacs).toBe(1_569_826_816);
    expect(s.outputShape).toEqual([1, 1000]);
    expect(s.rows.find((r) => r.name === 'inception3a.branch2.1')).toMatchObject({ type: 'Conv2d', outputShape: [1, 128, 28, 28], params: 110_720 });
    expect(s.toString()).toMatch(/Total params: 6,994,392/);
  });

  it('parameter count follows 5,969,392 + 1025·numClasses', () => {
    using m = new GoogLeNet({ numClasses: 10 });
    expect(m.numParameters()).toBe(5_979_642);
  });

  it('takes any input size the strides allow (adaptive pool) and any batch', () => {
    using m = new GoogLeNet({ numClasses: 7, seed: 3 });
    expect(m.outputShape([3, 3, 257, 199])).toEqual([3, 7]);
    using x = Tensor.fromArray(rand(2 * 3 * 40 * 33, 9), [2, 3, 40, 33]);
    using y = m.forward(x);
    expect(y.shape).toEqual([2, 7]);
    expect(y.toArray().every(Number.isFinite)).toBe(true);
    // conv1 and every pool keep at least one pixel, so even 1×1 inputs run
    expect(m.outputShape([1, 3, 1, 1])).toEqual([1, 7]);
    expect(() => m.outputShape([1, 3, 0, 8])).toThrow(/input must not be empty, but got shape \[1, 3, 0, 8\]/);
  });

  it('is deterministic per seed and differs across seeds', () => {
    using a = new GoogLeNet({ numClasses: 5, seed: 11 });
    using b = new GoogLeNet({ numClasses: 5, seed: 11 });
    using c = new GoogLeNet({ numClasses: 5, seed: 12 });
    const fa = a.stateDict().get('fc.weight')!.data;
    expect(b.stateDict().get('fc.weight')!.data).toEqual(fa);
    expect(c.stateDict().get('fc.weight')!.data).not.toEqual(fa);
  });

  it('rejects unknown variants', () => {
    expect(() => new GoogLeNet({ variant: 'vgg' as never })).toThrow(/variant must be 'relu', 'seed' or 'torchvision', but got "vgg"/);
    expect(() => new GoogLeNet({ variant: 'seed', auxLogits: true })).toThrow(/only in the 'torchvision' variant/);
  });
});

describe('torchvision GoogLeNet (S7, S8)', () => {
  it("has torchvision's parameter counts: 6,624,904 without aux heads, 13,004,888 with", () => {
    using lean = new GoogLeNet({ variant: 'torchvision' });
    using full = new GoogLeNet({ variant: 'torchvision', auxLogits: true });
    expect(lean.numParameters()).toBe(6_624_904);
    expect(full.numParameters()).toBe(13_004_888);
    expect(summary(lean, [1, 3, 224, 224]).totalParams).toBe(6_624_904);
    // BatchNorm running statistics are state but not parameters: 14,560 values without aux
    const buffers = lean.namedStateEntries().filter(([, p]) => p.buffer);
    expect(buffers.reduce((s, [, p]) => s + p.shape[0]!, 0)).toBe(14_560);
    expect(lean.stateDict().has('inception3a.branch3.1.conv.weight')).toBe(true);
    expect(lean.stateDict().get('inception3a.branch3.1.conv.weight')!.shape).toEqual([32, 16, 3, 3]); // torchvision's 3×3
  });

  it('eval mode never runs the auxiliary heads; training mode returns them and the seed loss', () => {
    using m = new GoogLeNet({ variant: 'torchvision', numClasses: 6, auxLogits: true, seed: 2, dropout: 0, dropoutAux: 0 });
    using x = Tensor.fromArray(rand(2 * 3 * 48 * 48, 4), [2, 3, 48, 48]);
    const evalOut = m.forwardAll(x);
    expect(Object.keys(evalOut)).toEqual(['logits']);
    expect(() => googlenetLoss(evalOut, 1)).toThrow(/needs aux1 and aux2 logits/);
    m.train();
    // Training mode with BatchNorm frozen (running statistics): the eval logits, on the recorded path.
    for (const b of m.modules()) if (b instanceof BatchNorm2d) b.eval();
    const frozen = m.forwardAll(x);
    frozen.logits.toArray().forEach((v, i) => expect(v).toBeCloseTo(evalOut.logits.data[i]!, 4));
    // Training mode: BatchNorm normalises with the batch's statistics, so the logits move.
    m.train();
    const out = m.forwardAll(x);
    expect(out.aux1!.shape).toEqual([2, 6]);
    expect(out.aux2!.shape).toEqual([2, 6]);
    expect(out.logits.toArray()).not.toEqual(evalOut.logits.toArray());
    const loss = googlenetLoss(out, [1, 4]);
    expect(loss.shape).toEqual([]);
    const { main, aux1, aux2 } = loss.parts;
    expect(loss.item()).toBeCloseTo(main + 0.3 * (aux1 + aux2), 5);
    using ce = crossEntropy(out.logits, [1, 4]);
    expect(ce.item()).toBeCloseTo(main, 6);
    expect(() => crossEntropy(out.logits, [1, 6])).toThrow(/target 6 is not a class index in \[0, 6\)/);
    for (const t of [evalOut.logits, out.logits, out.aux1!, out.aux2!, frozen.logits, frozen.aux1!, frozen.aux2!, loss]) t.dispose();
  });

  it("transformInput applies torchvision's per-channel re-normalisation before conv1", () => {
    using plain = new GoogLeNet({ variant: 'torchvision', numClasses: 3, seed: 8 });
    using tf = new GoogLeNet({ variant: 'torchvision', numClasses: 3, seed: 8, transformInput: true });
    const xs = rand(3 * 48 * 48, 6);
    const moved = Float32Array.from(xs, (v, i) => {
      const c = Math.floor(i / (48 * 48));
      return v * ([0.229, 0.224, 0.225][c]! / 0.5) + ([0.485, 0.456, 0.406][c]! - 0.5) / 0.5;
    });
    using x = Tensor.fromArray(xs, [1, 3, 48, 48]);
    using xm = Tensor.fromArray(moved, [1, 3, 48, 48]);
    using a = tf.forward(x);
    using b = plain.forward(xm);
    a.toArray().forEach((v, i) => expect(v).toBeCloseTo(b.data[i]!, 4));
  });
});

describe('state dicts', () => {
  it('round-trips and loads into a fresh model with identical outputs', () => {
    using a = new Sequential(new Conv2d({ inChannels: 3, outChannels: 6, kernelSize: 3, padding: 1 }), new ReLU(), new MaxPool2d({ kernelSize: 2 }));
    using b = new Sequential(new Conv2d({ inChannels: 3, outChannels: 6, kernelSize: 3, padding: 1 }), new ReLU(), new MaxPool2d({ kernelSize: 2 }));
    b.loadStateDict(a.stateDict());
    using x = Tensor.fromArray(rand(3 * 8 * 8, 2), [1, 3, 8, 8]);
    using ya = a.forward(x);
    using yb = b.forward(x);
    expect(yb.toArray()).toEqual(ya.toArray());
  });

  it('names the missing, unexpected or misshapen key and leaves the model unchanged', () => {
    using m = new Sequential(new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 1 }), new Linear({ inFeatures: 4, outFeatures: 2 }));
    const before = m.stateDict();
    const dict = new Map(before);
    dict.delete('1.bias');
    const err = (() => { try { m.loadStateDict(dict); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(StateDictError);
    expect((err as StateDictError).key).toBe('1.bias');
    expect((err as Error).message).toMatch(/missing key "1\.bias"/);

    // A file's bytes, not parsed: at once, with the parser to use (it used to run 93 s, then RangeError).
    expect(() => m.loadStateDict(Buffer.alloc(30_000_000) as never)).toThrow(/got Buffer bytes, not a state dict: parse the file first with loadSafetensors\(bytes\) \(\.safetensors\) or loadPth\(bytes\)/);
    expect(() => m.loadStateDict(new ArrayBuffer(8) as never)).toThrow(StateDictError);
    expect(() => m.loadStateDict(null as never)).toThrow(/expected a Map or an object of tensors, but got null/);
    expect(() => m.loadStateDict({ ...Object.fromEntries(before), extra: new Float32Array(1) })).toThrow(/unexpected key "extra"/);
    m.loadStateDict({ ...Object.fromEntries(before), extra: new Float32Array(1) }, { strict: false });

    const bad = new Map<string, StateTensor | Float32Array>(before);
    bad.set('0.weight', { shape: [3, 2, 1, 2], data: new Float32Array(12) });
    expect(() => m.loadStateDict(bad)).toThrow(/"0\.weight" has shape \[3,2,1,2\], expected \[3, 2, 1, 1\]/);
    bad.set('0.weight', new Float32Array(5));
    expect(() => m.loadStateDict(bad)).toThrow(/has 5 values, expected 6/);
    bad.set('0.weight', new Float64Array(6) as never);
    expect(() => m.loadStateDict(bad)).toThrow(/must be float32 data/);
    // a failed load changed nothing (the valid keys before the bad one were not applied)
    for (const [k, v] of m.stateDict()) expect(v.data, k).toEqual(before.get(k)!.data);
  });

  it('initParameters follows state-dict order with the weyl-fmix32 streams', () => {
    using m = new Conv2d({ inChannels: 2, outChannels: 2, kernelSize: 1, seed: 4 });
    const first = m.stateDict().get('weight')!.data;
    initParameters(m, { seed: 4, weightGain: 6, biasScale: 0.125 });
    expect(m.stateDict().get('weight')!.data).toEqual(first);
    expect(() => initParameters(m, { seed: -1 })).toThrow(ValueError);
  });

  it('manualSeed makes unseeded construction reproducible', () => {
    manualSeed(77);
    using a = new Linear({ inFeatures: 3, outFeatures: 2 });
    manualSeed(77);
    using b = new Linear({ inFeatures: 3, outFeatures: 2 });
    expect(b.stateDict().get('weight')!.data).toEqual(a.stateDict().get('weight')!.data);
  });
});

describe('bad input: typed errors naming the layer, before any WASM call; the instance stays usable', () => {
  it('wrong rank, channels or size name the layer path and the value', () => {
    using m = new GoogLeNet({ numClasses: 4, seed: 1 });
    using x = Tensor.fromArray(rand(4 * 64 * 64, 3), [1, 4, 64, 64]);
    expect(() => m.forward(x)).toThrow(ShapeError);
    expect(() => m.forward(x)).toThrow('Error in conv1 (Conv2d): input must have 3 channels, but got 4 (shape [1, 4, 64, 64])');
    using r3 = Tensor.fromArray(rand(3 * 64 * 64, 3), [3, 64, 64]);
    expect(() => m.forward(r3)).toThrow(/conv1 \(Conv2d\): input must be rank 4 \[N, C, H, W\], but got rank 3/);
    using inc = new Inception(16, 4, 4, 4, 4, 4, 4);
    using wrong = Tensor.fromArray(rand(8 * 5 * 5, 1), [1, 8, 5, 5]);
    expect(() => inc.forward(wrong)).toThrow(/Error in branch1 \(Conv2d\): input must have 16 channels, but got 8/);
  });

  it('a deep mismatch in a user Sequential is caught before the first layer runs', () => {
    using seq = new Sequential(new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 1 }), new Conv2d({ inChannels: 5, outChannels: 2, kernelSize: 1 }));
    using x = Tensor.fromArray(rand(3 * 4, 1), [1, 3, 2, 2]);
    expect(() => seq.forward(x)).toThrow(/Error in 1 \(Conv2d\): input must have 5 channels, but got 4/);
  });

  it('invalid options are ValueErrors naming the option and value', () => {
    expect(() => new Conv2d({ inChannels: 0, outChannels: 2, kernelSize: 3 })).toThrow('Error in Conv2d: inChannels must be an integer ≥ 1, but got 0');
    expect(() => new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: Number.NaN })).toThrow(/kernelSize must be an integer ≥ 1, but got NaN/);
    expect(() => new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: [3, 0] })).toThrow(/kernelSize\[1\] must be an integer ≥ 1, but got 0/);
    expect(() => new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: [3] as never })).toThrow(/kernelSize must be a number or \[height, width\], but got \[3\]/);
    expect(() => new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3, stride: Infinity })).toThrow(ValueError);
    expect(() => new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3, padding: -1 })).toThrow("Error in Conv2d: padding must be a non-negative integer, but got -1");
    expect(() => new MaxPool2d({ kernelSize: 3, padding: 2 })).toThrow(/padding must be at most half the kernel size/);
    expect(() => new Dropout(1.5)).toThrow(ValueError);
    expect(() => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 1, activation: 'gelu' as never })).toThrow(/activation must be 'relu' or null/);
  });

  it('Conv2d with 0 output channels is a ValueError naming the op and the value (issue 12)', () => {
    // PyTorch 1.13 builds nn.Conv2d(3, 0, 1) but its forward raises ("expected weight to
    // be at least 1 at dimension 0"): refused here when the layer is built. 1×1 (the
    // direct GEMM, whose split panicked on 0 channels in the kernels) and 3×3 alike.
    for (const kernelSize of [1, 3]) {
      expect(() => new Conv2d({ inChannels: 3, outChannels: 0, kernelSize })).toThrow(ValueError);
      expect(() => new Conv2d({ inChannels: 3, outChannels: 0, kernelSize })).toThrow('Error in Conv2d: outChannels must be an integer ≥ 1, but got 0');
    }
  });

  it('kernel larger than the padded input', () => {
    using c = new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 5 });
    using x = Tensor.fromArray(rand(9, 1), [1, 1, 3, 3]);
    expect(() => c.forward(x)).toThrow(/input 3×3 \(padded 3×3\) is smaller than the 5×5 kernel/);
  });

  it('disposed tensors and modules', () => {
    const c = new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 1 });
    const x = Tensor.fromArray([1, 2, 3, 4], [1, 1, 2, 2]);
    x.dispose();
    expect(() => c.forward(x)).toThrow(DisposedError);
    expect(() => c.forward(x)).toThrow(/Error in Conv2d: input Tensor\(shape=\[1, 1, 2, 2\], disposed\) is disposed/);
    c.dispose();
    c.dispose();
    expect(c.isDisposed).toBe(true);
    using y = Tensor.fromArray([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(() => c.forward(y)).toThrow(/Conv2d: cannot run forward: the module is disposed/);
    expect(() => c.stateDict()).toThrow(DisposedError);
  });

  it('after every error above, the same instance still computes correctly', () => {
    using conv = new Conv2d({ inChannels: 2, outChannels: 1, kernelSize: 1, bias: false });
    conv.loadStateDict({ weight: new Float32Array([2, -1]) });
    using bystander = Tensor.fromArray([9, 8, 7], [3]);
    using bad = Tensor.fromArray([1, 2, 3], [1, 3, 1, 1]);
    expect(() => conv.forward(bad)).toThrow(ShapeError);
    using x = Tensor.fromArray([1, 2, 3, 4], [1, 2, 1, 2]);
    using y = conv.forward(x);
    expect(y.toArray()).toEqual(new Float32Array([2 * 1 - 3, 2 * 2 - 4]));
    expect(bystander.toArray()).toEqual(new Float32Array([9, 8, 7]));
  });
});

describe('ops', () => {
  it('concat validates shapes and names the input', () => {
    using a = Tensor.fromArray([1, 2], [1, 1, 1, 2]);
    using b = Tensor.fromArray([3, 4, 5, 6], [1, 2, 1, 2]);
    using c = concat([a, b]);
    expect(c.shape).toEqual([1, 3, 1, 2]);
    expect(c.toArray()).toEqual(new Float32Array([1, 2, 3, 4, 5, 6]));
    using d = Tensor.fromArray([1, 2, 3], [1, 1, 1, 3]);
    expect(() => concat([a, d])).toThrow(/Error in concat: input 1 has shape \[1, 1, 1, 3\]/);
  });

  it('topk sorts by value and breaks ties by index', () => {
    using l = Tensor.fromArray([0.1, 3, 2, 3, -1, 5, 4, 4], [2, 4]);
    expect(topk(l, 2)).toEqual([
      [{ index: 1, value: 3 }, { index: 3, value: 3 }],
      [{ index: 1, value: 5 }, { index: 2, value: 4 }],
    ]);
    expect(() => topk(l, 5)).toThrow(ShapeError);
  });

  /**
   * torch.topk(torch.tensor(rows, dtype=torch.float32), k, dim=1) as PyTorch 1.13 returned
   * it (Debian python3-torch 1.13.1, CPU), values and indices copied from its output.
   */
  const TORCH_TOPK: { rows: number[][]; k: number; values: number[][]; indices: number[][] }[] = [
    { rows: [[1, NaN, 3, 2]], k: 2, values: [[NaN, 3]], indices: [[1, 2]] },
    { rows: [[1, NaN, 3, 2]], k: 4, values: [[NaN, 3, 2, 1]], indices: [[1, 2, 3, 0]] },
    { rows: [[-Infinity, Infinity, NaN, 0, -0, 1]], k: 6, values: [[NaN, Infinity, 1, 0, -0, -Infinity]], indices: [[2, 1, 5, 3, 4, 0]] },
    { rows: [[0.5, -Infinity, 2.5, NaN, -1, Infinity, 3]], k: 3, values: [[NaN, Infinity, 3]], indices: [[3, 5, 6]] },
    { rows: [[0.5, -Infinity, 2.5, NaN, -1, Infinity, 3]], k: 7, values: [[NaN, Infinity, 3, 2.5, 0.5, -1, -Infinity]], indices: [[3, 5, 6, 2, 0, 4, 1]] },
    { rows: [[NaN, 1, NaN, 3, NaN, 2]], k: 4, values: [[NaN, NaN, NaN, 3]], indices: [[2, 4, 0, 3]] },
    { rows: [[NaN, 1, NaN, 3, NaN, 2]], k: 3, values: [[NaN, NaN, NaN]], indices: [[2, 4, 0]] },
    { rows: [[0, -0, 0, -0]], k: 4, values: [[0, -0, 0, -0]], indices: [[2, 3, 0, 1]] },
    { rows: [[2, -3, NaN, 5], [Infinity, -Infinity, 0.25, -0]], k: 3, values: [[NaN, 5, 2], [Infinity, 0.25, -0]], indices: [[2, 3, 0], [0, 2, 3]] },
    { rows: [[1, 1, 1, 1, 1, 1, 1, 1]], k: 3, values: [[1, 1, 1]], indices: [[6, 5, 4]] },
  ];

  /** Equal as topk ranks them: both NaN, or numerically equal (so -0 equals 0). */
  const tied = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b)) || a === b;

  it('topk ranks like torch.topk in PyTorch 1.13: NaN first, then descending; ties (several NaNs, 0 and -0) lower index first where PyTorch leaves them unordered (issue 12)', () => {
    for (const t of TORCH_TOPK) {
      using l = Tensor.fromArray(t.rows.flat(), [t.rows.length, t.rows[0]!.length]);
      topk(l, t.k).forEach((got, b) => {
        const row = t.rows[b]!;
        const what = `topk([${row.join(', ')}], ${t.k})`;
        got.forEach(({ index, value }, i) => {
          const want = t.values[b]![i]!;
          expect(tied(value, want), `${what}: value ${i} is ${value}, PyTorch's ${want}`).toBe(true);
          const group = row.flatMap((v, j) => (tied(v, want) ? [j] : []));
          if (group.length === 1) expect([index, Object.is(value, want)], `${what}: entry ${i}`).toEqual([t.indices[b]![i], true]);
        });
        // A group of equal values wholly inside the top k: the same indices as PyTorch's,
        // ours in increasing order (PyTorch's CPU sort leaves them in any order).
        for (const want of new Set(t.values[b])) {
          const group = row.flatMap((v, j) => (tied(v, want) ? [j] : []));
          const mine = got.filter((e) => tied(e.value, want)).map((e) => e.index);
          const theirs = t.indices[b]!.filter((j) => tied(row[j]!, want));
          if (theirs.length === group.length) expect(mine, `${what}: the entries equal to ${want}`).toEqual([...theirs].sort((x, y) => x - y));
        }
      });
    }
  });

  it('topk of a 1000-class row with NaN, +inf and -inf: the order of torch.topk in PyTorch 1.13 for k = 5, 20 (partial sort, selection) and 1000', () => {
    const row = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) / 8 - 60);
    [row[123], row[500], row[7]] = [NaN, Infinity, -Infinity];
    using l = Tensor.fromArray(row, [1, 1000]);
    // torch.topk's indices (the first 25 for k = 1000; all values distinct but for none).
    const torch20 = [123, 500, 321, 642, 963, 284, 605, 926, 247, 568, 889, 210, 531, 852, 173, 494, 815, 136, 457, 778];
    expect(topk(l, 5)[0]!.map((e) => e.index)).toEqual(torch20.slice(0, 5));
    expect(topk(l, 20)[0]!.map((e) => e.index)).toEqual(torch20);
    const all = topk(l, 1000)[0]!;
    expect(all.slice(0, 25).map((e) => e.index)).toEqual([...torch20, 99, 420, 741, 62, 383]);
    expect(all.slice(0, 6).map((e) => e.value)).toEqual([NaN, Infinity, 64.875, 64.75, 64.625, 64.5]);
    expect(all.slice(-3).map((e) => e.value)).toEqual([-59.875, -60, -Infinity]);
  });

  it('topk equals an explicit sort: NaN first, then larger first, then lower index (fast-check, 200 runs, seed 42)', () => {
    const value = fc.oneof(fc.constantFrom(NaN, Infinity, -Infinity, 0, -0, 1, -1, 2.5, 3e38), fc.float());
    const rows = fc.integer({ min: 1, max: 24 }).chain((classes) =>
      fc.record({ data: fc.array(fc.array(value, { minLength: classes, maxLength: classes }), { minLength: 1, maxLength: 3 }), k: fc.integer({ min: 1, max: classes }) }),
    );
    // Sort keys: (0 for NaN, else 1), then −value (−0 and 0 are one key), then the index.
    const key = (v: number, i: number): [number, number, number] => (Number.isNaN(v) ? [0, 0, i] : [1, -v, i]);
    const before = (a: [number, number, number], b: [number, number, number]) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) || a[2] - b[2];
    fc.assert(
      fc.property(rows, ({ data, k }) => {
        using l = Tensor.fromArray(data.flat(), [data.length, data[0]!.length]);
        const x = l.toArray();
        const classes = data[0]!.length;
        const want = data.map((_, b) => {
          const order = Array.from({ length: classes }, (_, i) => i).sort((i, j) => before(key(x[b * classes + i]!, i), key(x[b * classes + j]!, j)));
          return order.slice(0, k).map((index) => ({ index, value: x[b * classes + index]! }));
        });
        expect(topk(l, k)).toEqual(want);
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('train()/eval() set the mode recursively; Dropout drops in training mode, from manualSeed', () => {
    using m = new Sequential(new Linear({ inFeatures: 3, outFeatures: 3 }), new Dropout(0.5));
    m.train();
    expect([...m.namedModules()].every(([, x]) => x.training)).toBe(true);
    m.eval();
    expect([...m.namedModules()].some(([, x]) => x.training)).toBe(false);
    using drop = new Dropout(0.25);
    using x = Tensor.fromArray(Array.from({ length: 4000 }, (_, i) => 1 + (i % 7)), [1, 4000]);
    using same = drop.forward(x);
    expect(same.toArray()).toEqual(x.toArray()); // eval: the identity
    drop.train();
    const masked = (seed: number) => {
      manualSeed(seed);
      using y = drop.forward(x);
      return y.toArray();
    };
    const y = masked(3);
    const kept = y.filter((v) => v !== 0).length;
    expect(kept / 4000).toBeGreaterThan(0.72);
    expect(kept / 4000).toBeLessThan(0.78);
    y.forEach((v, i) => expect(v === 0 || Math.abs(v - x.data[i]! / 0.75) < 1e-5).toBe(true));
    expect(masked(3)).toEqual(y); // the same seed, the same mask
    expect(masked(4)).not.toEqual(y);
  });
});
