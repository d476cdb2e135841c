import type { PlanBuilder, Value } from '../plan.js';
import { ReLU } from './activation.js';
import { Conv2d } from './conv.js';
import { type LayerRow, Module } from './module.js';

/** One step of a chain: a layer, or a Conv2d with the following ReLU fused into it. */
type Step = { name: string; layer: Module; fusedRelu: false } | { name: string; layer: Conv2d; fusedRelu: true };

/**
 * Layers run one after another. A Conv2d followed by a ReLU runs as one kernel call (the
 * ReLU happens in the GEMM epilogue).
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

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lower(plan: PlanBuilder, x: Value): Value {
    return this.lowerChain(plan, x);
  }

  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  override lowerInto(plan: PlanBuilder, x: Value, out: Value, channelOffset: number): void {
    const all = this.#steps();
    const last = all.pop();
    if (last === undefined) return plan.copyChannels(x, out, channelOffset);
    const y = this.#through(plan, all, x);
    if (last.fusedRelu) last.layer.lowerFused(plan, y, out, channelOffset, true);
    else last.layer.lowerInto(plan, y, out, channelOffset);
  }

  /**
   * `lower`, calling `tap(name, value)` after each layer (for heads that read an inner
   * layer's output), and stopping after the layer named `until` when given.
   */
  /** @internal Lowering to plans (ts/plan.ts): not part of the public API. */
  protected lowerChain(plan: PlanBuilder, x: Value, tap?: (name: string, y: Value) => void, until?: string): Value {
    return this.#through(plan, this.#steps(), x, tap, until);
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

  #through(plan: PlanBuilder, steps: readonly Step[], x: Value, tap?: (name: string, y: Value) => void, until?: string): Value {
    let cur = x;
    for (const s of steps) {
      if (s.fusedRelu) {
        const out = plan.value(s.layer.outputShape(cur.shape));
        s.layer.lowerFused(plan, cur, out, 0, true);
        cur = out;
      } else {
        cur = s.layer.lower(plan, cur);
      }
      tap?.(s.name, cur);
      if (s.name === until) break;
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
