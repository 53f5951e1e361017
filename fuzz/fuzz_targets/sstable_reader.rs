//! Feeds arbitrary bytes to the SSTable reader as a table file: opening, point reads and
//! iteration must return data or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lsm::engine::sstable::fuzz_table_bytes(data);
});
