// Encodes a bench graph (lib/arch.mjs) as an ONNX ModelProto with the `onnx-proto`
// package (protobufjs), so onnxruntime-web runs exactly the network the other engines
// run, with the same weights, and no Python is needed at run time.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto');
const INTS = onnx.AttributeProto.AttributeType.INTS;
const INT = onnx.AttributeProto.AttributeType.INT;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

const ints = (name, values) => ({ name, type: INTS, ints: values });
const int = (name, value) => ({ name, type: INT, i: value });
const bytesOf = (f32) => new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
const initializer = (name, shape, data) => ({ name, dims: shape, dataType: FLOAT, rawData: bytesOf(data) });
const valueInfo = (name, dims) => ({
  name,
  type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
});

/**
 * @param graph  a graph from lib/arch.mjs
 * @param params state dict: `${name}.weight` (OIHW / [out, in]) and `${name}.bias`
 * @param batch  a number for a fixed batch, or a string for a symbolic batch dimension
 * @returns the encoded model bytes
 */
export function encodeModel(graph, params, { batch = 'N', opset = 13 } = {}) {
  const nodes = [];
  const inits = [];
  const key = (name, what) => (name ? `${name}.${what}` : what);
  const param = (name, what) => {
    const t = params[key(name, what)];
    if (!t) throw new Error(`no parameter ${key(name, what)}`);
    inits.push(initializer(key(name, what), t.shape, t.data));
    return key(name, what);
  };
  let outShape;
  for (const op of graph.ops) {
    switch (op.op) {
      case 'conv': {
        const pre = op.relu ? `${op.output}/pre` : op.output;
        nodes.push({
          opType: 'Conv',
          name: op.name || 'conv',
          input: [op.input, param(op.name, 'weight'), param(op.name, 'bias')],
          output: [pre],
          attribute: [ints('kernel_shape', [op.k, op.k]), ints('strides', [op.s, op.s]), ints('pads', [op.p, op.p, op.p, op.p]), ints('dilations', [1, 1]), int('group', 1)],
        });
        if (op.relu) nodes.push({ opType: 'Relu', name: `${op.name || 'conv'}/relu`, input: [pre], output: [op.output] });
        break;
      }
      case 'maxpool':
        nodes.push({
          opType: 'MaxPool',
          name: op.name || 'maxpool',
          input: [op.input],
          output: [op.output],
          attribute: [ints('kernel_shape', [op.k, op.k]), ints('strides', [op.s, op.s]), ints('pads', [op.p, op.p, op.p, op.p]), int('ceil_mode', 0)],
        });
        break;
      case 'concat':
        nodes.push({ opType: 'Concat', name: op.output, input: op.inputs, output: [op.output], attribute: [int('axis', 1)] });
        break;
      case 'gap':
        nodes.push({ opType: 'GlobalAveragePool', name: 'avgpool', input: [op.input], output: [op.output] });
        break;
      case 'flatten':
        nodes.push({ opType: 'Flatten', name: 'flatten', input: [op.input], output: [op.output], attribute: [int('axis', 1)] });
        break;
      case 'fc':
        nodes.push({ opType: 'Gemm', name: op.name, input: [op.input, param(op.name, 'weight'), param(op.name, 'bias')], output: [op.output], attribute: [int('transB', 1)] });
        break;
      default:
        throw new Error(`no ONNX encoding for ${op.op}`);
    }
  }
  // Output shape of the last op, for the graph's declared output.
  const last = graph.ops[graph.ops.length - 1];
  if (last.op === 'fc') outShape = [batch, last.outF];
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'inception-wasm bench',
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: 'bench',
      node: nodes,
      initializer: inits,
      input: [valueInfo(graph.input, [batch, ...graph.inputShape])],
      // Output shapes are inferred by onnxruntime; only rank-2 logits are declared in full.
      output: [outShape ? valueInfo(graph.output, outShape) : { name: graph.output, type: { tensorType: { elemType: FLOAT } } }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
