//! Channel concatenation of NCHW tensors. Inception blocks avoid it altogether (each
//! branch writes into its slice, see `conv::ChannelSlice`); this is the general op.

/// Copies `n` images of `c_src × hw` from `src` into channels
/// `[channel_offset, channel_offset + c_src)` of `dst` (`n × c_dst × hw`).
pub fn copy_channels(src: &[f32], n: usize, c_src: usize, hw: usize, dst: &mut [f32], c_dst: usize, channel_offset: usize) {
    assert_eq!(src.len(), n * c_src * hw, "concat: source length");
    assert_eq!(dst.len(), n * c_dst * hw, "concat: destination length");
    assert!(channel_offset + c_src <= c_dst, "concat: channel slice out of range");
    let block = c_src * hw;
    for b in 0..n {
        let at = (b * c_dst + channel_offset) * hw;
        dst[at..at + block].copy_from_slice(&src[b * block..(b + 1) * block]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn places_each_image_in_its_slice() {
        // two images, 1 channel of 2 pixels, into channel 1 of 3
        let src = [1.0, 2.0, 3.0, 4.0];
        let mut dst = [0.0; 12];
        super::copy_channels(&src, 2, 1, 2, &mut dst, 3, 1);
        assert_eq!(dst, [0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0]);
    }
}
