//! The module's allocator, wrapped: counts allocations (a test shows that a steady-state
//! forward allocates nothing but the tensor it returns), tracks the bytes held, and
//! enforces `init({ maximumMemory })` by refusing allocations past it. A refused
//! allocation is an ordinary failure: every allocation sized by the user goes through
//! `inception_kernels::alloc` or `try_reserve` and becomes an `OutOfMemoryError`.
//! A few relaxed atomic operations per allocation: nothing next to the allocation itself.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wasm_bindgen::prelude::*;

struct Accounting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static HELD: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Counts `bytes` as held unless that would pass the limit.
fn admit(bytes: usize) -> bool {
    let limit = LIMIT.load(Ordering::Relaxed);
    HELD.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| held.checked_add(bytes).filter(|&total| total <= limit)).is_ok()
}

/// `allocate()` if `layout` is admitted under the limit; its bytes are counted as held
/// unless the allocation fails.
fn admitted(layout: Layout, allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    if !admit(layout.size()) {
        return std::ptr::null_mut();
    }
    let p = allocate();
    if p.is_null() {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    p
}

// SAFETY: forwards every call to the system allocator; a refused request returns null,
// which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for Accounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        admitted(layout, || System.alloc(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        admitted(layout, || System.alloc_zeroed(layout))
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        let grow = new_size.saturating_sub(layout.size());
        if !admit(grow) {
            return std::ptr::null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        if p.is_null() {
            HELD.fetch_sub(grow, Ordering::Relaxed);
        } else {
            HELD.fetch_sub(layout.size().saturating_sub(new_size), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Accounting = Accounting;

/// Heap allocations (and reallocations) made by the module since it was instantiated.
#[wasm_bindgen(js_name = allocationCount)]
pub fn allocation_count() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Bytes of heap the module holds now.
#[wasm_bindgen(js_name = heldBytes)]
pub fn held_bytes() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// Refuses allocations that would take the bytes held past `bytes` (`init({ maximumMemory })`).
#[wasm_bindgen(js_name = setHeapLimit)]
pub fn set_heap_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
}
