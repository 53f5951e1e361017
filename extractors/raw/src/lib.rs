//! lsm's `raw` extractor as a WebAssembly component: the whole value is the term (text
//! when it is UTF-8, else bytes). It takes no options.

use lsm_plugin_sdk::extract::extract_raw;
use lsm_plugin_sdk::{export_extractor, Extractor, Options, Term};

struct Raw;

impl Extractor for Raw {
    type Config = ();

    fn configure(options: &Options) -> Result<(), String> {
        options.allow_only(&[])
    }

    fn extract(_: &(), _key: &str, value: &[u8]) -> Result<Vec<Term>, String> {
        Ok(extract_raw(value))
    }
}

export_extractor!(Raw);
