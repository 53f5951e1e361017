//! lsm's `json_path` extractor as a WebAssembly component: the terms at a path of a
//! JSON value. Options: `{"path": "$.city"}` (required).

use lsm_plugin_sdk::extract::{extract_json, Path};
use lsm_plugin_sdk::{export_extractor, Extractor, Options, Term};

struct JsonPath;

impl Extractor for JsonPath {
    type Config = Path;

    fn configure(options: &Options) -> Result<Path, String> {
        options.allow_only(&["path"])?;
        options.path("path", None)
    }

    fn extract(path: &Path, _key: &str, value: &[u8]) -> Result<Vec<Term>, String> {
        extract_json(path, value)
    }
}

export_extractor!(JsonPath);
