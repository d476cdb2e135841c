//! Fallible allocation for everything whose size comes from the user (weights, tensors,
//! the activation arena, packed filters): running out of memory must be an error the
//! caller can report, never an abort. In WebAssembly an abort is a trap, and a trap in the
//! middle of a call leaves the module's bookkeeping (wasm-bindgen's borrow flags, the
//! stack pointer) as it was at that moment, which poisons every later call.

use std::fmt;

/// An allocation of `bytes` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    pub bytes: usize,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out of memory: {} bytes could not be allocated", self.bytes)
    }
}

/// Bytes of `len` values of `T`, or the failure a request that large is (it cannot fit).
fn bytes_of<T>(len: usize) -> Result<usize, OutOfMemory> {
    len.checked_mul(size_of::<T>()).ok_or(OutOfMemory { bytes: usize::MAX })
}

/// An empty vector with room for exactly `len` values.
pub fn with_capacity<T>(len: usize) -> Result<Vec<T>, OutOfMemory> {
    let bytes = bytes_of::<T>(len)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| OutOfMemory { bytes })?;
    Ok(v)
}

/// `len` copies of `value`.
pub fn filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>, OutOfMemory> {
    let mut v = with_capacity(len)?;
    v.resize(len, value);
    Ok(v)
}

/// A copy of `data`.
pub fn copied<T: Clone>(data: &[T]) -> Result<Vec<T>, OutOfMemory> {
    let mut v = with_capacity(data.len())?;
    v.extend_from_slice(data);
    Ok(v)
}

/// Grows `v` to at least `len` values (filling with `value`), failing instead of aborting.
pub fn grow_to<T: Clone>(v: &mut Vec<T>, len: usize, value: T) -> Result<(), OutOfMemory> {
    if v.len() < len {
        let bytes = bytes_of::<T>(len)?;
        v.try_reserve_exact(len - v.len()).map_err(|_| OutOfMemory { bytes })?;
        v.resize(len, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_sizes_fail_instead_of_aborting() {
        assert!(with_capacity::<f32>(usize::MAX / 2).is_err());
        assert_eq!(filled(usize::MAX, 0u8).unwrap_err().bytes, usize::MAX);
        let mut v = vec![1.0f32];
        assert!(grow_to(&mut v, usize::MAX / 4, 0.0).is_err());
        assert_eq!(v, [1.0], "a failed grow leaves the vector as it was");
        assert_eq!(copied(&[1, 2, 3]).unwrap(), [1, 2, 3]);
    }
}
