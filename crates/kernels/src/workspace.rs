//! The scratch a thread reuses across kernel calls (one per thread; it only grows, so a
//! steady state allocates nothing): a leaf module, so that the kernels that fill it and
//! the plans that hand it out depend on it, not on each other.

/// Scratch memory reused across calls (one per thread); it only grows.
#[derive(Default, Debug)]
pub struct Workspace {
    /// im2col's padded input band.
    pub(crate) band: Vec<f32>,
    /// The GEMM's packed strip of `B`.
    pub(crate) strip: Vec<f32>,
    pub(crate) winograd: WinogradScratch,
    /// Max pooling's row buffer.
    pub(crate) pool_row: Vec<f32>,
    /// Training's backward scratch (`train::Graph`): columns, rows, gradient blocks.
    pub(crate) train: Vec<f32>,
    /// Training's packed `A` blocks.
    pub(crate) packed: Vec<f32>,
}

impl Workspace {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.band.capacity() + self.strip.capacity() + self.pool_row.capacity() + self.train.capacity() + self.packed.capacity()) * size_of::<f32>() + self.winograd.bytes()
    }
}

/// Scratch of the Winograd kernels (`conv::winograd::conv_block`).
#[derive(Default, Debug)]
pub struct WinogradScratch {
    /// One input channel's rows for the block's tile rows, zero-padded.
    pub(crate) rows: Vec<f32>,
    /// Transformed input `V[ξ][c_in][block]` (laid out as `conv::winograd`'s `Layout` says).
    pub(crate) v: Vec<f32>,
    /// Products of one chunk of output channels, `M[o][ξ][block]`.
    pub(crate) m: Vec<f32>,
    /// Per tile of the block: offset of its first input in `rows`.
    pub(crate) tile_in: Vec<usize>,
    /// Per tile of the block: its output pixel and how many rows/columns of it exist.
    pub(crate) tile_out: Vec<OutTile>,
    /// The GEMM's tail panel (unused: blocks are padded to `NR` columns).
    pub(crate) gemm_tail: Vec<f32>,
}

impl WinogradScratch {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.rows.capacity() + self.v.capacity() + self.m.capacity() + self.gemm_tail.capacity()) * size_of::<f32>()
            + self.tile_in.capacity() * size_of::<usize>()
            + self.tile_out.capacity() * size_of::<OutTile>()
    }
}

/// Where one tile's outputs go in an output plane.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OutTile {
    /// Index of its top-left pixel in the plane.
    pub(crate) pixel: usize,
    /// Rows and columns inside the output (< m at the bottom and right edges; 0 rows for
    /// the phantom lanes of the last group).
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}
