//! Lowering a convolution's input to the GEMM's `B` matrix.

use super::Conv2dParams;

/// Fills `cols` (`c_in·kh·kw` rows × `oh·ow` columns, row-major) with
/// `cols[(c·kh + ky)·kw + kx][oy·ow + ox] = x[c][oy·sh + ky - ph][ox·sw + kx - pw]`, zero
/// where that falls in the padding. Rows are built a run of valid columns at a time, so
/// stride-1 rows are plain slice copies between two zero-filled margins.
pub fn im2col(x: &[f32], p: &Conv2dParams, cols: &mut [f32]) {
    let (oh, ow) = (p.out_h(), p.out_w());
    assert_eq!(x.len(), p.c_in * p.h * p.w, "im2col: input length");
    assert_eq!(cols.len(), p.c_in * p.kh * p.kw * oh * ow, "im2col: cols length");
    // Output columns whose input column ox·sw + kx - pw lies inside [0, w).
    let valid = |k: usize, s: usize, pad: usize, len: usize, out: usize| {
        let lo = pad.saturating_sub(k).div_ceil(s).min(out);
        let hi = if len + pad > k { ((len + pad - k - 1) / s + 1).min(out) } else { 0 };
        (lo, hi.max(lo))
    };
    let work = cols.len();
    crate::par::for_each_chunk(cols, p.kh * p.kw * oh * ow, work, |c, channel_rows: &mut [f32]| {
        let plane = &x[c * p.h * p.w..(c + 1) * p.h * p.w];
        let mut rows = channel_rows.chunks_exact_mut(oh * ow);
        for ky in 0..p.kh {
            let (oy0, oy1) = valid(ky, p.sh, p.ph, p.h, oh);
            for kx in 0..p.kw {
                let (ox0, ox1) = valid(kx, p.sw, p.pw, p.w, ow);
                let row = rows.next().expect("im2col: row count");
                for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
                    if oy < oy0 || oy >= oy1 || ox0 == ox1 {
                        out.fill(0.0);
                        continue;
                    }
                    out[..ox0].fill(0.0);
                    out[ox1..].fill(0.0);
                    let src = &plane[(oy * p.sh + ky - p.ph) * p.w..][..p.w];
                    let ix0 = ox0 * p.sw + kx - p.pw;
                    if p.sw == 1 {
                        out[ox0..ox1].copy_from_slice(&src[ix0..ix0 + (ox1 - ox0)]);
                    } else {
                        for (o, v) in out[ox0..ox1].iter_mut().zip(src[ix0..].iter().step_by(p.sw)) {
                            *o = *v;
                        }
                    }
                }
            }
        }
    });
}
