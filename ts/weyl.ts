/**
 * The `weyl-fmix32` generator's per-tensor rule (`../shared/fixtures/README.md` §1.3); the
 * generator itself runs in WebAssembly (`crates/kernels/src/weyl.rs`). The library's
 * deterministic initialisation uses it, so a model built with a seed equals, bit for bit,
 * the one the PyTorch fixtures were generated from.
 */

/** How a tensor's stream values become float32s: `offset + scale·(abs ? |u| : u)`. */
export interface FillRule {
  readonly offset: number;
  readonly scale: number;
  readonly abs: boolean;
}

/** `f32(sqrt(gain / fanIn))`: the weight bound, He-uniform for gain 6. */
export const weightScale = (gain: number, fanIn: number): number => Math.fround(Math.sqrt(gain / fanIn));
