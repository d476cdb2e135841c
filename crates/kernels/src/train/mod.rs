//! Training: a network recorded as a [`Graph`] of steps whose forward keeps every
//! activation backward needs, the backward passes of every op the seed's networks use
//! (convolution, BatchNorm in train and eval mode, pooling, linear, ReLU, dropout,
//! concatenation), cross-entropy, and the optimisers (SGD, Adam, AdamW) as PyTorch 1.13
//! defines them.
//!
//! Parameters are shared with the JavaScript side ([`Shared`]): the graph reads a layer's
//! weights from the same memory the optimiser updates in place and accumulates gradients
//! into the memory `Parameter.grad` shows, so a step is forward, backward and optimiser
//! with no copies between them.
//!
//! Threads: a graph runs on the plans' thread team (`plan::exec`), one step per stage,
//! each step split into tasks that write disjoint elements and whose arithmetic does not
//! depend on the split, so results are bit-identical for every thread count.

use std::cell::UnsafeCell;
use std::sync::Arc;

pub mod grad;
pub mod graph;
pub mod loss;
pub mod optim;

pub use graph::{Graph, GraphBuilder, GraphError, Param, TrainOp};

/// A float buffer shared between JavaScript handles, graphs and optimisers. Its length is
/// fixed once set (a gradient starts empty and is allocated, zeroed, by the first
/// backward that reaches it), so its address never changes while anyone reads it.
///
/// Access is unchecked: the wasm module has one JavaScript thread, which calls one graph
/// or optimiser at a time, and a graph's tasks write disjoint parts (see `Graph`).
#[derive(Debug, Default)]
pub struct Shared(UnsafeCell<Vec<f32>>);

// SAFETY: see the type's documentation: callers keep accesses from racing.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

impl Shared {
    pub fn new(data: Vec<f32>) -> Arc<Self> {
        Arc::new(Self(UnsafeCell::new(data)))
    }

    pub fn len(&self) -> usize {
        // SAFETY: reading the length races with nothing (it changes only in `ensure_len`,
        // called between runs).
        unsafe { (*self.0.get()).len() }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data.
    ///
    /// # Safety
    /// No one may write it during the borrow.
    pub unsafe fn get(&self) -> &[f32] {
        &*self.0.get()
    }

    /// The data, to write.
    ///
    /// # Safety
    /// No one else may read or write the elements written during the borrow.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_mut(&self) -> &mut [f32] {
        &mut *self.0.get()
    }

    /// Makes an empty buffer `len` zeros (a gradient's first use); a no-op when it has them.
    ///
    /// # Safety
    /// No one may hold a borrow of it.
    pub unsafe fn ensure_len(&self, len: usize) -> Result<(), crate::alloc::OutOfMemory> {
        let v = &mut *self.0.get();
        if v.is_empty() && len > 0 {
            *v = crate::alloc::filled(len, 0.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
