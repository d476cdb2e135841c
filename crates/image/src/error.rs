use core::fmt;

/// Why an image could not be made into pixels. `Display` starts with a stable code
/// (`code()`), which the TypeScript API turns into `ImageError.reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// No bytes at all.
    Empty,
    /// Neither JPEG nor PNG; holds what the first bytes look like.
    UnknownFormat(String),
    /// More pixels than allowed (PIL's decompression-bomb guard); refused from the header,
    /// before anything is allocated.
    TooLarge { width: usize, height: usize, max_pixels: u64 },
    /// A resize or an output past the caps of `transform` (`MAX_SIDE`, `MAX_OUTPUT`).
    OutputTooLarge { width: u64, height: u64, what: &'static str },
    /// The data ends before the image does.
    Truncated(String),
    /// Malformed data (bad marker, bad checksum, inconsistent sizes).
    Corrupt(String),
    /// A valid file this decoder does not read (e.g. lossless or arithmetic-coded JPEG).
    Unsupported(String),
    /// The heap could not hold a buffer of `bytes`.
    OutOfMemory { bytes: usize },
}

impl ImageError {
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Empty => "empty",
            ImageError::UnknownFormat(_) => "unknown-format",
            ImageError::TooLarge { .. } | ImageError::OutputTooLarge { .. } => "too-large",
            ImageError::Truncated(_) => "truncated",
            ImageError::Corrupt(_) => "corrupt",
            ImageError::Unsupported(_) => "unsupported",
            ImageError::OutOfMemory { .. } => "out-of-memory",
        }
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.code())?;
        match self {
            ImageError::Empty => write!(f, "the input has no bytes"),
            ImageError::UnknownFormat(head) => write!(f, "not a JPEG or PNG file (it starts with {head})"),
            ImageError::TooLarge { width, height, max_pixels } => write!(
                f,
                "{width}×{height} = {} pixels is more than maxPixels ({max_pixels}); a decompression bomb, or raise maxPixels",
                (*width as u128) * (*height as u128)
            ),
            ImageError::OutputTooLarge { width, height, what } => write!(f, "the {what} image would be {width}×{height}, past what a network input can be"),
            ImageError::Truncated(m) | ImageError::Corrupt(m) | ImageError::Unsupported(m) => write!(f, "{m}"),
            ImageError::OutOfMemory { bytes } => write!(f, "a buffer of {bytes} bytes did not fit in memory"),
        }
    }
}

impl std::error::Error for ImageError {}
