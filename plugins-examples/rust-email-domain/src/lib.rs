//! An lsm extractor plugin: indexes the domain of the email address found at a path of
//! a JSON record, lowercased, as a text term.
//!
//! Options: `{"path": "$.contact.email"}`; the default path is `$.email`. Where the path
//! finds several texts (`$.emails`, an array), each address gives its domain.
//!
//! `{"email": "Ana@Example.COM"}` gives `text("example.com")`. A text that is not an
//! address (`local@domain`, both parts non-empty, no spaces) gives no term; a value
//! that is not JSON is an error.

use lsm_plugin_sdk::extract::{extract_json, Path};
use lsm_plugin_sdk::{export_extractor, Extractor, Options, Term};

/// Where the address is when the index gives no `path`.
pub const DEFAULT_PATH: &str = "$.email";

struct EmailDomain;

impl Extractor for EmailDomain {
    type Config = Path;

    fn configure(options: &Options) -> Result<Path, String> {
        options.allow_only(&["path"])?;
        options.path("path", Some(DEFAULT_PATH))
    }

    fn extract(path: &Path, _key: &str, value: &[u8]) -> Result<Vec<Term>, String> {
        Ok(extract_json(path, value)?
            .iter()
            .filter_map(|term| match term {
                Term::Text(address) => domain(address).map(Term::Text),
                _ => None,
            })
            .collect())
    }
}

export_extractor!(EmailDomain);

/// The lowercased domain of `address`, if it is one.
fn domain(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let valid = |part: &str| !part.is_empty() && !part.contains(char::is_whitespace);
    (valid(local) && valid(domain)).then(|| domain.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(options: &str, value: &str) -> Result<Vec<Term>, String> {
        let path = EmailDomain::configure(&Options::parse(options)?)?;
        EmailDomain::extract(&path, "users:1", value.as_bytes())
    }

    #[test]
    fn domains_lowercased() {
        assert_eq!(
            run("{}", r#"{"email": " Ana@Example.COM "}"#),
            Ok(vec![Term::Text("example.com".into())])
        );
        assert_eq!(
            run(
                r#"{"path": "$.emails"}"#,
                r#"{"emails": ["a@x.org", "not an address", "b@Y.org", 7, "@z", "c@"]}"#
            ),
            Ok(vec![Term::Text("x.org".into()), Term::Text("y.org".into())])
        );
        assert_eq!(run("{}", r#"{"name": "x"}"#), Ok(vec![]));
        assert!(run("{}", "not json").is_err());
        assert!(run(r#"{"path": "email"}"#, "{}").is_err());
        assert!(run(r#"{"field": "$.a"}"#, "{}").is_err());
    }
}
