//! The per-thread heap-call counter the hot-path tests install as their
//! global allocator: every allocation, reallocation and free a thread makes
//! counts on that thread, so a test can prove that the thread users run
//! (a gate's tick, a control thread, a robot node's ticking thread) makes
//! none, whatever other threads do.
//!
//! Owns only that. A test-only dependency: never one of a shipped binary.
//!
//! In a test binary:
//! `#[global_allocator] static GLOBAL: heap_count::PerThreadCount = heap_count::PerThreadCount;`
//! then compare `heap_count::heap_calls()` before and after the work.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting each call on the calling thread.
pub struct PerThreadCount;

thread_local! {
    /// Allocations, reallocations and frees made by this thread.
    static HEAP_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Heap calls (allocations, reallocations and frees) this thread has made.
pub fn heap_calls() -> u64 {
    HEAP_CALLS.with(Cell::get)
}

fn count() {
    // `try_with`: a thread being torn down has no counter any more.
    let _ = HEAP_CALLS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for PerThreadCount {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count();
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
