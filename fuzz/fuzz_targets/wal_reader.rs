//! Feeds arbitrary bytes to the WAL segment decoder: it must return records or an
//! error, never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lsm::engine::wal::fuzz_wal_bytes(data);
});
