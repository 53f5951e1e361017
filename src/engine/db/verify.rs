//! `Db::verify`: reads every table block by block and every WAL record, checking every
//! checksum and the order of keys, and reports on each file.

use serde::Serialize;

use super::super::wal;
use super::Inner;

/// The outcome of checking one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    /// The file.
    pub path: std::path::PathBuf,
    /// `"table"` or `"wal"`.
    pub kind: &'static str,
    /// Versions (tables) or records (WAL) checked.
    pub items: u64,
    /// What is wrong with the file, if anything.
    pub error: Option<String>,
}

/// The outcome of [`Db::verify`](super::Db::verify).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// True when every file passed.
    pub ok: bool,
    /// One line per file.
    pub files: Vec<FileCheck>,
}

impl Inner {
    pub(super) fn verify(&self) -> VerifyReport {
        let version = self.current_version();
        let mut files: Vec<FileCheck> = version
            .tables()
            .map(|(_, t)| {
                let (items, error) = match t.verify() {
                    Ok(n) => (n, None),
                    Err(e) => (0, Some(e.to_string())),
                };
                FileCheck {
                    path: t.path().to_path_buf(),
                    kind: "table",
                    items,
                    error,
                }
            })
            .collect();
        match wal::list_segments(&self.wal_dir) {
            Ok(ids) => {
                for (i, &id) in ids.iter().enumerate() {
                    let path = wal::segment_path(&self.wal_dir, id);
                    // The newest segment is being appended to: a record in flight at its
                    // end is not damage.
                    let (items, error) = match wal::check_segment(&path, i + 1 == ids.len()) {
                        Ok(o) => (o.records, None),
                        Err(e) => (0, Some(e.to_string())),
                    };
                    files.push(FileCheck {
                        path,
                        kind: "wal",
                        items,
                        error,
                    });
                }
            }
            Err(e) => files.push(FileCheck {
                path: self.wal_dir.clone(),
                kind: "wal",
                items: 0,
                error: Some(e.to_string()),
            }),
        }
        VerifyReport {
            ok: files.iter().all(|f| f.error.is_none()),
            files,
        }
    }
}
