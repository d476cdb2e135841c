import { produce, type Tensor } from '../tensor.js';
import { ReLU } from './activation.js';
import { Conv2d } from './conv.js';
import { copyChannels, type LayerRow, Module } from './module.js';

/** One step of a chain: a layer, or a Conv2d with the following ReLU fused into it. */
type Step = { layer: Module; fusedRelu: false } | { layer: Conv2d; fusedRelu: true };

function steps(layers: readonly Module[]): Step[] {
  const out: Step[] = [];
  for (let i = 0; i < layers.length; i++) {
    const m = layers[i]!;
    if (m instanceof Conv2d && m.activation === null && layers[i + 1] instanceof ReLU) {
      out.push({ layer: m, fusedRelu: true });
      i++;
    } else {
      out.push({ layer: m, fusedRelu: false });
    }
  }
  return out;
}

function runStep(s: Step, x: Tensor): Tensor {
  if (!s.fusedRelu) return s.layer.forward(x);
  return produce(s.layer.outputShape(x.shape), (out) => s.layer.forwardFused(x, out, 0, true));
}

/**
 * Children run one after another. A Conv2d followed by a ReLU runs as one call (the
 * ReLU happens in the GEMM epilogue), and each intermediate tensor is freed as soon as
 * the next layer has consumed it. The whole chain's shapes are checked before any layer
 * runs.
 */
export abstract class Chain extends Module {
  override outputShape(input: readonly number[]): number[] {
    return this.children().reduce<number[]>((shape, [, m]) => m.outputShape(shape), [...input]);
  }

  override trace(input: readonly number[], emit: (row: LayerRow) => void): number[] {
    return this.children().reduce<number[]>((shape, [, m]) => m.trace(shape, emit), [...input]);
  }

  override forward(x: Tensor): Tensor {
    const shape = this.checkInput(x);
    const all = steps(this.children().map(([, m]) => m));
    if (all.length === 0) return produce(shape, (out) => out.data.set(x.data));
    const last = all.pop()!;
    const y = this.#through(all, x);
    try {
      return runStep(last, y);
    } finally {
      if (y !== x) y.dispose();
    }
  }

  override forwardInto(x: Tensor, out: Tensor, channelOffset: number): void {
    this.checkInput(x);
    const all = steps(this.children().map(([, m]) => m));
    const last = all.pop();
    if (last === undefined) return copyChannels(this.op, x, out, channelOffset);
    const y = this.#through(all, x);
    try {
      if (last.fusedRelu) last.layer.forwardFused(y, out, channelOffset, true);
      else last.layer.forwardInto(y, out, channelOffset);
    } finally {
      if (y !== x) y.dispose();
    }
  }

  /** Runs `steps` on `x`; returns `x` itself when there are none. */
  #through(all: readonly Step[], x: Tensor): Tensor {
    let cur = x;
    for (const s of all) {
      let next: Tensor;
      try {
        next = runStep(s, cur);
      } finally {
        if (cur !== x) cur.dispose();
      }
      cur = next;
    }
    return cur;
  }
}

/** `nn.Sequential`: children named `0`, `1`, … as in PyTorch's state dict. */
export class Sequential extends Chain {
  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => this.addModule(String(i), m));
  }
}
