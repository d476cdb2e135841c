//! Operands that span a whole batch, for GEMMs over `N = n·oh·ow` columns instead of one
//! GEMM per image: a layer on small maps (7×7 … 1×1, or the 32×32 inputs of training) then
//! gives the microkernel whole `NR`-column strips instead of a few pixels per image.

use crate::gemm::{PackB, NR};

use super::Conv2dParams;

/// An NCHW batch (`n × rows × ohw`: a 1×1 layer's input, or `dZ`) read as the
/// `rows × n·ohw` matrix `B` of a GEMM over the whole batch: column `j` is pixel
/// `j % ohw` of image `j / ohw`.
pub(crate) struct BatchColumns<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rows: usize,
    pub(crate) ohw: usize,
    pub(crate) n: usize,
}

impl PackB for BatchColumns<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.n * self.ohw
    }

    /// Row by row, in runs of one image's consecutive pixels: one or two images of 4
    /// pixels fill a strip of 2×2 maps with two 16-byte moves per row.
    fn pack_strip(&self, j: usize, dst: &mut [f32]) {
        let (rows, ohw) = (self.rows, self.ohw);
        let nr = NR.min(self.cols() - j);
        let mut t = 0;
        while t < nr {
            let (b, q) = ((j + t) / ohw, (j + t) % ohw);
            let len = (ohw - q).min(nr - t);
            let image = &self.data[b * rows * ohw + q..];
            for kk in 0..rows {
                let (d, s) = (&mut dst[kk * NR + t..][..len], &image[kk * ohw..][..len]);
                match (<&mut [f32; 4]>::try_from(&mut *d), <&[f32; 4]>::try_from(s)) {
                    (Ok(d), Ok(s)) => *d = *s,
                    _ if len == 1 => d[0] = s[0],
                    _ => d.copy_from_slice(s),
                }
            }
            t += len;
        }
        if nr < NR {
            for row in dst[..rows * NR].chunks_exact_mut(NR) {
                row[nr..].fill(0.0);
            }
        }
    }

    /// A strip inside one image (maps of 8 pixels or more) is read in place, `ohw` apart.
    fn in_place(&self, j: usize) -> Option<(*const f32, usize)> {
        let (b, q) = (j / self.ohw, j % self.ohw);
        (q + NR <= self.ohw && self.rows > 0).then(|| (self.data[b * self.rows * self.ohw + q..].as_ptr(), self.ohw))
    }
}

/// The im2col of a whole batch as the `c_in·kh·kw × n·oh·ow` matrix `B` of the forward
/// GEMM, gathered one strip at a time (zero in the padding).
pub(crate) struct BatchIm2col<'a> {
    pub(crate) x: &'a [f32],
    pub(crate) p: Conv2dParams,
    pub(crate) n: usize,
}

impl PackB for BatchIm2col<'_> {
    fn rows(&self) -> usize {
        self.p.c_in * self.p.kh * self.p.kw
    }

    fn cols(&self) -> usize {
        self.n * self.p.out_h() * self.p.out_w()
    }

    fn pack_strip(&self, j: usize, dst: &mut [f32]) {
        let p = &self.p;
        let (ow, ohw, img) = (p.out_w(), p.out_h() * p.out_w(), p.c_in * p.h * p.w);
        let nr = NR.min(self.cols() - j);
        for t in 0..NR {
            let (b, oy, ox) = ((j + t) / ohw, (j + t) % ohw / ow, (j + t) % ow);
            for c in 0..p.c_in {
                for i in 0..p.kh {
                    let iy = (oy * p.sh + i) as isize - p.ph as isize;
                    for jj in 0..p.kw {
                        let ix = (ox * p.sw + jj) as isize - p.pw as isize;
                        let r = (c * p.kh + i) * p.kw + jj;
                        let inside = t < nr && iy >= 0 && (iy as usize) < p.h && ix >= 0 && (ix as usize) < p.w;
                        dst[r * NR + t] = if inside { self.x[b * img + (c * p.h + iy as usize) * p.w + ix as usize] } else { 0.0 };
                    }
                }
            }
        }
    }
}
