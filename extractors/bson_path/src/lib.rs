//! lsm's `bson_path` extractor as a WebAssembly component: the terms at a path of a
//! BSON document. Options: `{"path": "$.city"}` (required).

use lsm_plugin_sdk::extract::{extract_bson, Path};
use lsm_plugin_sdk::{export_extractor, Extractor, Options, Term};

struct BsonPath;

impl Extractor for BsonPath {
    type Config = Path;

    fn configure(options: &Options) -> Result<Path, String> {
        options.allow_only(&["path"])?;
        options.path("path", None)
    }

    fn extract(path: &Path, _key: &str, value: &[u8]) -> Result<Vec<Term>, String> {
        extract_bson(path, value)
    }
}

export_extractor!(BsonPath);
