//! SSTables: immutable sorted files of versions. See docs/format.md.
