//! The write-ahead log. See docs/format.md.
