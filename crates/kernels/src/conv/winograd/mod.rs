//! Winograd convolution F(m×m, 3×3) for 3×3 stride-1 layers (Lavin & Gray, 2015), with
//! output tiles of m = 2 or m = 4.
//!
//! Each m×m block of outputs comes from a t×t input tile (t = m + 2): with `V = Bᵀ·d·B`
//! per input channel and `U = G·g·Gᵀ` per filter (computed once, when the layer is
//! built), the t² entries `ξ` of the transformed domain are independent GEMMs
//! `M_ξ[c_out × tiles] = U_ξ[c_out × c_in] · V_ξ[c_in × tiles]`, and `Y = Aᵀ·M·A` gives
//! the outputs. Multiply-adds per output and input channel: 9 direct, 16/4 = 4 for
//! F(2×2), 36/16 = 2.25 for F(4×4); the transforms are O(c·tiles·t²), not O(c_out·…).
//!
//! The transforms are written out as the few adds and multiplies they are (the
//! factorisations below, as in ncnn's `winograd43`/`winograd23`), on four tiles at once:
//! lane `l` of every vector belongs to tile `l` of a *group* of four consecutive tiles, so
//! `V_ξ[c][tile..tile + 4]` is one 16-byte store and `M_ξ[o][tile..tile + 4]` one load.
//! Each input channel's rows are first copied, zero-padded, into a small staging buffer,
//! so the input transform reads every tile through four lane pointers with no bounds
//! checks; outputs are stored clipped per lane (partial edge tiles, phantom lanes past the
//! end). [`Lanes`] is the only ISA-specific part: a scalar twin (compiled everywhere, the
//! native build's path and the oracle of the simd128 one) and simd128.
//!
//! Work is split into blocks of tiles × ranges of output channels ([`conv_block`], a
//! single-threaded function that writes only its own output pixels, for an executor that
//! runs blocks as tasks). A block whose input holds NaN, ∞ or values too large for the
//! transforms ([`WinogradWeights::accepts`]) runs on the GEMM path instead (`Conv2d`).
//!
//! Accuracy: F(2×2)'s transforms only add and halve; F(4×4)'s scale by up to 8 and 1/24,
//! which costs a few bits: its worst error is 6–8.5× a naive float32 loop's at 4 to 96
//! input channels (F(2×2)'s 0.4–0.8×), against fixture tolerances of 16–32× that error
//! (`../shared/fixtures/README.md` §4). Worst fixture: `conv3x3` (16 → 32, F4) at 0.31 of
//! its tolerance, RMS 0.019 (`npm run test:fixtures`).

/// Largest input tile (F4), for stack buffers.
const TMAX: usize = 6;

/// Tiles per lane group (one `f32x4`).
const LANES: usize = 4;

mod block;
mod filter;
mod lanes;
mod transform;
#[cfg(test)]
mod tests;

pub use block::{block_tiles, conv_block, images_of, tile_grid};
pub use filter::{WinogradWeights, F2, F4};
