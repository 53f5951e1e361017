//! Parsing of the JSONPath subset.

use std::fmt;

/// Most segments a path may have.
pub const MAX_SEGMENTS: usize = 64;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A field of an object.
    Field(String),
    /// An element of an array.
    Index(usize),
    /// Every element of an array, or every value of an object.
    Wildcard,
}

/// A parsed path such as `$.address.city` or `$.tags[*]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    segments: Vec<Segment>,
}

/// Why a path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// The path.
    pub path: String,
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid path {:?} at offset {}: {} (use $, .name, ['name'], [0], [*])",
            self.path, self.offset, self.reason
        )
    }
}

impl std::error::Error for PathError {}

impl Path {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Path, PathError> {
        let err = |offset: usize, reason: &str| PathError {
            path: text.to_string(),
            offset,
            reason: reason.to_string(),
        };
        let bytes = text.as_bytes();
        if bytes.first() != Some(&b'$') {
            return Err(err(0, "a path starts with $"));
        }
        let mut segments = Vec::new();
        let mut i = 1;
        while i < bytes.len() {
            if segments.len() >= MAX_SEGMENTS {
                return Err(err(i, "too many segments"));
            }
            match bytes[i] {
                b'.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < bytes.len() && bytes[end] != b'.' && bytes[end] != b'[' {
                        end += 1;
                    }
                    let name = &text[start..end];
                    if name.is_empty() {
                        return Err(err(start, "empty field name"));
                    }
                    segments.push(if name == "*" {
                        Segment::Wildcard
                    } else {
                        Segment::Field(name.to_string())
                    });
                    i = end;
                }
                b'[' => {
                    let rest = &text[i + 1..];
                    if let Some(after) = rest.strip_prefix("*]") {
                        segments.push(Segment::Wildcard);
                        i = text.len() - after.len();
                    } else if let Some(quote) =
                        rest.chars().next().filter(|c| *c == '\'' || *c == '"')
                    {
                        let body = &rest[1..];
                        let close = body
                            .find(quote)
                            .ok_or_else(|| err(i, "unterminated quoted name"))?;
                        if !body[close + 1..].starts_with(']') {
                            return Err(err(i, "expected ] after a quoted name"));
                        }
                        segments.push(Segment::Field(body[..close].to_string()));
                        i = text.len() - body[close + 2..].len();
                    } else {
                        let close = rest.find(']').ok_or_else(|| err(i, "unterminated ["))?;
                        let index: usize = rest[..close]
                            .parse()
                            .map_err(|_| err(i + 1, "expected an index, * or a quoted name"))?;
                        segments.push(Segment::Index(index));
                        i = text.len() - rest[close + 1..].len();
                    }
                }
                _ => return Err(err(i, "expected . or [")),
            }
        }
        Ok(Path {
            text: text.to_string(),
            segments,
        })
    }

    /// The steps after `$`.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let p = Path::parse("$.a.b[0]['c d'][*].e.*").expect("parse");
        assert_eq!(
            p.segments(),
            &[
                Segment::Field("a".into()),
                Segment::Field("b".into()),
                Segment::Index(0),
                Segment::Field("c d".into()),
                Segment::Wildcard,
                Segment::Field("e".into()),
                Segment::Wildcard,
            ]
        );
        assert_eq!(Path::parse("$").expect("root").segments(), &[]);
        assert_eq!(
            Path::parse("$[\"x.y\"]").expect("quoted").segments(),
            &[Segment::Field("x.y".into())]
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            "", "a.b", "$.", "$..a", "$[", "$[x]", "$['a'", "$['a'x", "$a", "$[-1]", "$.a[1",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
        let long = format!("${}", ".a".repeat(MAX_SEGMENTS + 1));
        assert!(Path::parse(&long).is_err());
    }
}
