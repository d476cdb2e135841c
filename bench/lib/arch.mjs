// The networks the benchmarks run, as one small graph description that every engine
// consumes: ONNX models for onnxruntime-web are encoded from it (lib/onnx.mjs), the
// tfjs engine interprets it op by op (engines/tfjs.mjs), and it is checked layer by
// layer against the library's own `summary()` (run.mjs → checkAgainstSummary), so the
// three engines provably run the same architecture as `GoogLeNet` from dist/.
//
// Ops (tensors are named strings, shapes NCHW):
//   { op: 'conv', name, input, output, cin, cout, k, s, p, relu }   (bias always, as in GoogLeNet)
//   { op: 'maxpool', name, input, output, k, s, p }                 (floor mode, -inf padding)
//   { op: 'concat', inputs, output }                                (channels)
//   { op: 'gap', input, output }                                    (adaptive avg-pool to 1×1)
//   { op: 'flatten', input, output }
//   { op: 'fc', name, input, output, inF, outF }
// `name` is the layer's state-dict prefix in the library (`inception3a.branch2.1`), so
// `${name}.weight` / `${name}.bias` are the library's keys.

/** Builder state: appends ops and hands out fresh tensor names. */
class GraphBuilder {
  constructor(input, inputShape) {
    this.ops = [];
    this.input = input;
    this.inputShape = inputShape; // [C, H, W] (batch is a free dimension)
    this.n = 0;
  }
  tmp(hint) {
    return `${hint}:${this.n++}`;
  }
  conv(name, input, cin, cout, k, s, p, relu = true) {
    const output = this.tmp(name);
    this.ops.push({ op: 'conv', name, input, output, cin, cout, k, s, p, relu });
    return output;
  }
  maxpool(name, input, k, s, p) {
    const output = this.tmp(name);
    this.ops.push({ op: 'maxpool', name, input, output, k, s, p });
    return output;
  }
  /** One Inception v1 block, names as the library's `Inception` (branch2.0 = 1×1 reduce, branch2.1 = 3×3). */
  inception(prefix, input, [cin, c1, c3r, c3, c5r, c5, pp]) {
    const n = (s) => (prefix ? `${prefix}.${s}` : s);
    const b1 = this.conv(n('branch1'), input, cin, c1, 1, 1, 0);
    const b2 = this.conv(n('branch2.1'), this.conv(n('branch2.0'), input, cin, c3r, 1, 1, 0), c3r, c3, 3, 1, 1);
    const b3 = this.conv(n('branch3.1'), this.conv(n('branch3.0'), input, cin, c5r, 1, 1, 0), c5r, c5, 5, 1, 2);
    const b4 = this.conv(n('branch4.1'), this.maxpool(n('branch4.0'), input, 3, 1, 1), cin, pp, 1, 1, 0);
    const output = this.tmp(prefix || 'inception');
    this.ops.push({ op: 'concat', inputs: [b1, b2, b3, b4], output });
    return output;
  }
  done(output) {
    return { input: this.input, inputShape: this.inputShape, output, ops: this.ops };
  }
}

const BLOCKS = ['inception3a', 'inception3b', 'pool', 'inception4a', 'inception4b', 'inception4c', 'inception4d', 'inception4e', 'pool', 'inception5a', 'inception5b'];

/**
 * GoogLeNet with ReLU after every convolution (the library's default variant), from
 * the library's own `INCEPTION_CONFIG`: conv1 7×7/2 p3, maxpool 3/2 p1, conv2 3×3 p1,
 * maxpool, 3a, 3b, maxpool, 4a–4e, maxpool, 5a, 5b, global average pool, fc.
 */
export function googlenetGraph(config, { numClasses = 1000, size = 224 } = {}) {
  const g = new GraphBuilder('input', [3, size, size]);
  let x = g.conv('conv1', 'input', 3, 64, 7, 2, 3);
  x = g.maxpool('maxpool1', x, 3, 2, 1);
  x = g.conv('conv2', x, 64, 192, 3, 1, 1);
  x = g.maxpool('maxpool2', x, 3, 2, 1);
  let pools = 3;
  for (const b of BLOCKS) x = b === 'pool' ? g.maxpool(`maxpool${pools++}`, x, 3, 2, 1) : g.inception(b, x, config[b]);
  const gap = g.tmp('avgpool');
  g.ops.push({ op: 'gap', input: x, output: gap });
  const flat = g.tmp('flatten');
  g.ops.push({ op: 'flatten', input: gap, output: flat });
  const logits = 'logits';
  g.ops.push({ op: 'fc', name: 'fc', input: flat, output: logits, inF: 1024, outF: numClasses });
  return g.done(logits);
}

/** One Inception block on its own (state-dict names without prefix, as a root `Inception`). */
export function inceptionGraph(cfg, h, w) {
  const g = new GraphBuilder('input', [cfg[0], h, w]);
  return g.done(g.inception('', 'input', cfg));
}

/** A single convolution (+ fused ReLU), named as a root `Conv2d` (`weight`, `bias`). */
export function convGraph({ cin, h, w, cout, k, s, p }) {
  const g = new GraphBuilder('input', [cin, h, w]);
  return g.done(g.conv('', 'input', cin, cout, k, s, p, true));
}

export function maxpoolGraph({ c, h, w, k, s, p }) {
  const g = new GraphBuilder('input', [c, h, w]);
  return g.done(g.maxpool('', 'input', k, s, p));
}

const outSize = (n, k, s, p) => Math.floor((n + 2 * p - k) / s) + 1;

/**
 * Propagates shapes through a graph: returns each op with `inShape` / `outShape`
 * ([C, H, W] or [F]) and `macs` (per image), in order.
 */
export function annotate(graph) {
  const shapes = new Map([[graph.input, graph.inputShape]]);
  const rows = [];
  for (const op of graph.ops) {
    let inShape, outShape;
    let macs = 0;
    switch (op.op) {
      case 'conv': {
        inShape = shapes.get(op.input);
        const [c, h, w] = inShape;
        if (c !== op.cin) throw new Error(`${op.name}: expects ${op.cin} channels, gets ${c}`);
        outShape = [op.cout, outSize(h, op.k, op.s, op.p), outSize(w, op.k, op.s, op.p)];
        macs = op.cout * op.cin * op.k * op.k * outShape[1] * outShape[2];
        break;
      }
      case 'maxpool': {
        inShape = shapes.get(op.input);
        const [c, h, w] = inShape;
        outShape = [c, outSize(h, op.k, op.s, op.p), outSize(w, op.k, op.s, op.p)];
        break;
      }
      case 'concat': {
        const ins = op.inputs.map((t) => shapes.get(t));
        inShape = ins;
        outShape = [ins.reduce((a, s) => a + s[0], 0), ins[0][1], ins[0][2]];
        break;
      }
      case 'gap':
        inShape = shapes.get(op.input);
        outShape = [inShape[0], 1, 1];
        break;
      case 'flatten':
        inShape = shapes.get(op.input);
        outShape = [inShape.reduce((a, b) => a * b, 1)];
        break;
      case 'fc':
        inShape = shapes.get(op.input);
        if (inShape[0] !== op.inF) throw new Error(`fc: expects ${op.inF} features, gets ${inShape[0]}`);
        outShape = [op.outF];
        macs = op.inF * op.outF;
        break;
      default:
        throw new Error(`unknown op ${op.op}`);
    }
    shapes.set(op.output, outShape);
    rows.push({ ...op, inShape, outShape, macs });
  }
  return rows;
}

/** Total multiply-accumulates per image. */
export const graphMacs = (graph) => annotate(graph).reduce((a, r) => a + r.macs, 0);

/**
 * Checks the graph against the library's `summary()` rows: every convolution, pool and
 * the fc layer by name, output shape and MACs, and the totals. Throws on any drift, so a
 * change of the library's architecture cannot silently make the peers run another net.
 */
export function checkAgainstSummary(graph, summaryRows, totalMacs) {
  const mine = new Map(annotate(graph).filter((r) => r.name !== undefined).map((r) => [r.name, r]));
  const problems = [];
  let seen = 0;
  for (const row of summaryRows) {
    const type = { Conv2d: 'conv', MaxPool2d: 'maxpool', Linear: 'fc' }[row.type];
    if (!type) continue;
    const r = mine.get(row.name);
    seen++;
    if (!r || r.op !== type) {
      problems.push(`${row.name} (${row.type}) is not in the bench graph`);
      continue;
    }
    const out = row.outputShape.slice(1).join('x');
    if (out !== r.outShape.join('x')) problems.push(`${row.name}: output ${out} in the library, ${r.outShape.join('x')} here`);
    if (row.macs !== r.macs) problems.push(`${row.name}: ${row.macs} MACs in the library, ${r.macs} here`);
  }
  if (seen !== mine.size) problems.push(`${mine.size} named layers here, ${seen} in the library`);
  const macs = graphMacs(graph);
  if (macs !== totalMacs) problems.push(`total MACs ${totalMacs} in the library, ${macs} here`);
  if (problems.length) throw new Error(`the bench's GoogLeNet graph no longer matches the library's summary():\n  ${problems.join('\n  ')}`);
}

/**
 * Distinct convolution and max-pool shapes of a graph (per image), in first-use order,
 * each with the layers that use it: what bench/shapes.json holds.
 */
export function distinctShapes(graph) {
  const convs = new Map();
  const pools = new Map();
  for (const r of annotate(graph)) {
    if (r.op === 'conv') {
      const [cin, h, w] = r.inShape;
      const key = [cin, h, w, r.cout, r.k, r.s, r.p].join(',');
      if (!convs.has(key)) {
        convs.set(key, { id: `conv_${cin}x${h}x${w}_${r.cout}_k${r.k}s${r.s}p${r.p}`, cin, h, w, cout: r.cout, k: r.k, s: r.s, p: r.p, oh: r.outShape[1], ow: r.outShape[2], macs: r.macs, layers: [] });
      }
      convs.get(key).layers.push(r.name);
    } else if (r.op === 'maxpool') {
      const [c, h, w] = r.inShape;
      const key = [c, h, w, r.k, r.s, r.p].join(',');
      if (!pools.has(key)) pools.set(key, { id: `maxpool_${c}x${h}x${w}_k${r.k}s${r.s}p${r.p}`, c, h, w, k: r.k, s: r.s, p: r.p, oh: r.outShape[1], ow: r.outShape[2], layers: [] });
      pools.get(key).layers.push(r.name);
    }
  }
  return { convs: [...convs.values()], pools: [...pools.values()] };
}
