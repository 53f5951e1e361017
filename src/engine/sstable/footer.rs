//! Block handles and the fixed-size footer that ends every table file.
//!
//! The footer is the only part of a table found at a known place (the last
//! [`FOOTER_LEN`] bytes). It locates the index, filter and properties blocks and carries
//! the format version, a CRC32 of itself and the magic number. Checking that the handles
//! fit the file is the reader's job; this file only encodes and decodes.

use std::path::Path;

use crate::engine::coding::Reader;
use crate::engine::error::{Error, Result};

/// Format version this build writes and the newest one it reads. Version 2 added the
/// data blocks' hash index (flagged in each block, so version 1 tables, which have none,
/// read unchanged); a version 1 reader refuses version 2 tables instead of misreading
/// their blocks.
pub const FORMAT_VERSION: u32 = 2;

/// Magic number ending every table: the ASCII bytes `LSMTABLE` on disk.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"LSMTABLE");

/// Encoded size of a [`BlockHandle`].
pub(crate) const HANDLE_LEN: usize = 12;

/// Encoded size of the footer: three handles, version, CRC, magic.
pub const FOOTER_LEN: usize = 3 * HANDLE_LEN + 4 + 4 + 8;

/// Where a block lives in the file. `size` excludes the 5-byte trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockHandle {
    /// Offset of the block's first byte.
    pub offset: u64,
    /// Length of the block, without its trailer.
    pub size: u32,
}

impl BlockHandle {
    /// Appends `offset u64 | size u32`.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
    }

    /// Reads `offset u64 | size u32`.
    pub fn decode_from(r: &mut Reader<'_>) -> Option<BlockHandle> {
        let offset = r.u64().ok()?;
        let size = r.u32().ok()?;
        Some(BlockHandle { offset, size })
    }

    /// Offset just past the block's trailer, or `None` on overflow.
    pub fn end_with_trailer(&self) -> Option<u64> {
        self.offset
            .checked_add(u64::from(self.size))?
            .checked_add(super::block::BLOCK_TRAILER_LEN as u64)
    }
}

/// The decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub index: BlockHandle,
    pub filter: BlockHandle,
    pub properties: BlockHandle,
}

impl Footer {
    /// The footer's bytes, version [`FORMAT_VERSION`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        self.index.encode_to(&mut out);
        self.filter.encode_to(&mut out);
        self.properties.encode_to(&mut out);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        out
    }

    /// Decodes the last [`FOOTER_LEN`] bytes of `path`, found at file offset `offset`.
    ///
    /// The magic is checked first (is this a table at all?), then the version (a newer
    /// footer may be laid out differently before its last 16 bytes), then the CRC.
    pub fn decode(bytes: &[u8], path: &Path, offset: u64) -> Result<Footer> {
        if bytes.len() != FOOTER_LEN {
            return Err(Error::corruption(path, offset, "truncated footer"));
        }
        let field = |at: usize| offset + at as u64;
        let mut tail = Reader::new(&bytes[FOOTER_LEN - 16..]);
        let (version, stored_crc, magic) = match (tail.u32(), tail.u32(), tail.u64()) {
            (Ok(v), Ok(c), Ok(m)) => (v, c, m),
            _ => return Err(Error::corruption(path, offset, "truncated footer")),
        };
        if magic != TABLE_MAGIC {
            let reason = format!("bad magic {magic:#018x}: not a table file, or its end is lost");
            return Err(Error::corruption(path, field(FOOTER_LEN - 8), reason));
        }
        if version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let crc = crc32fast::hash(&bytes[..FOOTER_LEN - 12]);
        if crc != stored_crc {
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                offset,
                expected: stored_crc,
                got: crc,
            });
        }
        if version == 0 {
            return Err(Error::corruption(
                path,
                field(FOOTER_LEN - 16),
                "format version 0",
            ));
        }
        let mut r = Reader::new(bytes);
        let handles = (
            BlockHandle::decode_from(&mut r),
            BlockHandle::decode_from(&mut r),
            BlockHandle::decode_from(&mut r),
        );
        match handles {
            (Some(index), Some(filter), Some(properties)) => Ok(Footer {
                index,
                filter,
                properties,
            }),
            _ => Err(Error::corruption(path, offset, "truncated footer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        let h = |offset, size| BlockHandle { offset, size };
        Footer {
            index: h(300, 40),
            filter: h(100, 20),
            properties: h(125, 170),
        }
    }

    #[test]
    fn footer_round_trips_with_fixed_length() {
        let bytes = sample().encode();
        assert_eq!(bytes.len(), FOOTER_LEN);
        assert_eq!(&bytes[FOOTER_LEN - 8..], b"LSMTABLE");
        let back = Footer::decode(&bytes, Path::new("t.sst"), 345).expect("decodes");
        assert_eq!(back, sample());
    }

    #[test]
    fn footer_damage_is_classified() {
        let path = Path::new("t.sst");
        let good = sample().encode();

        let mut bad_magic = good.clone();
        bad_magic[FOOTER_LEN - 1] ^= 1;
        let err = Footer::decode(&bad_magic, path, 0).expect_err("bad magic");
        assert!(matches!(err, Error::Corruption { .. }), "{err}");

        let mut bad_crc = good.clone();
        bad_crc[3] ^= 0x40;
        let err = Footer::decode(&bad_crc, path, 7).expect_err("bad crc");
        assert!(
            matches!(err, Error::ChecksumMismatch { offset: 7, .. }),
            "{err}"
        );

        let mut future = good.clone();
        future[FOOTER_LEN - 16..FOOTER_LEN - 12]
            .copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = Footer::decode(&future, path, 0).expect_err("future");
        assert!(matches!(
            err,
            Error::UnsupportedVersion {
                found,
                supported: FORMAT_VERSION,
                ..
            } if found == FORMAT_VERSION + 1
        ));

        assert!(Footer::decode(&good[1..], path, 0).is_err());
    }
}
