//! Secondary indexes (in progress): the encodings the index records use.
//!
//! - [`term`]: terms as order-preserving UTF-8 key text.
//! - [`postings`]: blocks of document ids and the per-term meta record with its skip
//!   table.

pub mod postings;
pub mod term;
