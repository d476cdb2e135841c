import { produce, type Tensor } from '../tensor.js';
import { ReLU } from './activation.js';
import { Conv2d } from './conv.js';
import { copyChannels, type LayerRow, Module } from './module.js';

/** One step of a chain: a layer, or a Conv2d with the following ReLU fused into it. */
type Step = { name: string; layer: Module; fusedRelu: false } | { name: string; layer: Conv2d; fusedRelu: true };

function runStep(s: Step, x: Tensor): Tensor {
  if (!s.fusedRelu) return s.layer.forward(x);
  return produce(s.layer.outputShape(x.shape), (out) => s.layer.forwardFused(x, out, 0, true));
}

/**
 * Layers run one after another. A Conv2d followed by a ReLU runs as one call (the ReLU
 * happens in the GEMM epilogue), and each intermediate tensor is freed as soon as the
 * next layer has consumed it. The whole chain's shapes are checked before any layer runs.
 */
export abstract class Chain extends Module {
  /** The layers in execution order: all children, unless a subclass keeps some aside. */
  protected layers(): readonly (readonly [string, Module])[] {
    return this.children();
  }

  override outputShape(input: readonly number[]): number[] {
    return this.layers().reduce<number[]>((shape, [, m]) => m.outputShape(shape), [...input]);
  }

  override trace(input: readonly number[], emit: (row: LayerRow) => void): number[] {
    return this.layers().reduce<number[]>((shape, [, m]) => m.trace(shape, emit), [...input]);
  }

  override forward(x: Tensor): Tensor {
    return this.runChain(x);
  }

  override forwardInto(x: Tensor, out: Tensor, channelOffset: number): void {
    this.checkInput(x);
    const all = this.#steps();
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

  /**
   * `forward`, calling `tap(name, output)` after each layer (the output is freed after the
   * tap returns, so a tap that needs it later must copy or consume it there).
   */
  protected runChain(x: Tensor, tap?: (name: string, y: Tensor) => void): Tensor {
    const shape = this.checkInput(x);
    const all = this.#steps();
    if (all.length === 0) return produce(shape, (out) => out.data.set(x.data));
    const last = all.pop()!;
    const y = this.#through(all, x, tap);
    try {
      return runStep(last, y);
    } finally {
      if (y !== x) y.dispose();
    }
  }

  #steps(): Step[] {
    const layers = this.layers();
    const out: Step[] = [];
    for (let i = 0; i < layers.length; i++) {
      const [name, m] = layers[i]!;
      if (m instanceof Conv2d && m.activation === null && layers[i + 1]?.[1] instanceof ReLU) {
        out.push({ name, layer: m, fusedRelu: true });
        i++;
      } else {
        out.push({ name, layer: m, fusedRelu: false });
      }
    }
    return out;
  }

  /** Runs `steps` on `x`; returns `x` itself when there are none. */
  #through(all: readonly Step[], x: Tensor, tap?: (name: string, y: Tensor) => void): Tensor {
    let cur = x;
    for (const s of all) {
      let next: Tensor;
      try {
        next = runStep(s, cur);
      } finally {
        if (cur !== x) cur.dispose();
      }
      cur = next;
      if (tap) {
        try {
          tap(s.name, cur);
        } catch (e) {
          cur.dispose();
          throw e;
        }
      }
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
