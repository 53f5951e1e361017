//! The `lsm` binary: see `lsm --help`.

/// jemalloc rather than the system allocator: a flushed memtable's entries are freed by
/// the flush thread while the writer allocates, and glibc's malloc makes the two contend
/// (a get p99 four times higher during sustained writes; docs/benchmarks.md, "Overwrite").
/// Programs embedding the library choose their own allocator.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    lsm::cli::main()
}
