//! The shared test vectors (`extractors/vectors.json`) against the native logic. The
//! same file runs against the WebAssembly builds of the standard extractors.

use base64::Engine as _;
use lsm_extract::{extract_bson, extract_json, extract_raw, Path, Term};
use serde_json::Value;

fn value_bytes(value: &Value) -> Vec<u8> {
    let (kind, v) = value
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("value kind");
    match kind.as_str() {
        "json" => serde_json::to_vec(v).expect("json"),
        "text" => v.as_str().expect("text").as_bytes().to_vec(),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("b64"))
            .expect("base64"),
        "bson" => {
            let doc = match bson::Bson::try_from(v.clone()).expect("extended JSON") {
                bson::Bson::Document(d) => d,
                other => panic!("bson vectors are documents, not {other:?}"),
            };
            doc.to_vec().expect("bson")
        }
        other => panic!("unknown value kind {other}"),
    }
}

#[test]
fn native_extraction_matches_every_vector() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors.json"))
        .expect("vectors.json");
    let vectors: Vec<Value> = serde_json::from_str(&text).expect("vectors parse");
    assert!(vectors.len() >= 20);
    for v in &vectors {
        let name = v["name"].as_str().expect("name");
        let bytes = value_bytes(&v["value"]);
        let extractor = &v["extractor"];
        let got: Result<Vec<Term>, String> = match extractor["type"].as_str().expect("type") {
            "raw" => Ok(extract_raw(&bytes)),
            "json_path" => extract_json(
                &Path::parse(extractor["path"].as_str().expect("path")).expect("path"),
                &bytes,
            ),
            "bson_path" => extract_bson(
                &Path::parse(extractor["path"].as_str().expect("path")).expect("path"),
                &bytes,
            ),
            other => panic!("{name}: unknown extractor {other}"),
        };
        if v["error"] == Value::Bool(true) {
            assert!(got.is_err(), "{name}: expected an error, got {got:?}");
        } else {
            let expected: Vec<Term> = serde_json::from_value(v["terms"].clone()).expect("terms");
            assert_eq!(got.as_ref().expect(name), &expected, "{name}");
        }
    }
}
