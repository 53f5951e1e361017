//! CPU prefetch hints for reads that know which cache lines they will touch next.
//!
//! A batched point read ([`Table::get_many`](super::sstable::reader::Table::get_many))
//! asks for the lines its next stage will read (restart arrays, first search probes,
//! values) before it reads them, so the misses of many keys overlap instead of
//! following one another. Reading a byte would stall on each miss in turn; only the
//! prefetch instruction starts a load without waiting for it, and stable Rust offers it
//! only as an `unsafe` intrinsic. This is one of the two modules with `unsafe` (the
//! other is `plugin/artifact.rs`).

/// Starts loading the cache line that holds the start of `value` into the CPU caches,
/// without waiting for it (nothing on targets without a prefetch hint).
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint: it neither reads into the program nor faults,
    // whatever the address; the one given is that of a live value. The `sse` feature it
    // needs is part of every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast(),
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// [`prefetch`] of `bytes[at]`; nothing when `at` is out of range.
#[inline(always)]
pub(crate) fn prefetch_byte(bytes: &[u8], at: usize) {
    if let Some(byte) = bytes.get(at) {
        prefetch(byte);
    }
}
