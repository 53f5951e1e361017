//! Terms as key text: an order-preserving, UTF-8 encoding of [`Term`]s.
//!
//! Index records live in the engine under keys that must be UTF-8, and a `range` index
//! reads a range of keys, so the encoding of a term must (1) be valid UTF-8 and (2)
//! sort, bytewise, in the order of the values. One letter gives the type (types sort
//! `b` < `n` < `s` < `x`), then:
//!
//! | term | text |
//! | --- | --- |
//! | boolean | `b0`, `b1` |
//! | number (integer or float) | `n` + 16 hex digits of the value as an ordered f64 + 16 hex digits of the exact remainder (see below) |
//! | text | `s` + the text itself |
//! | bytes | `x` + lowercase hex |
//!
//! Integers and floats share one order, so `30` and `30.0` are the same term and a
//! range `{"gte": 29.5, "lt": 40}` finds both. A number `v` is encoded as the pair
//! `(f, r)`: `f` is `v` rounded to the nearest f64 (exact for floats and for integers up
//! to 2^53), `r = v - f` is what the rounding lost (non-zero only for integers beyond
//! 2^53, and then small); pairs sort like the numbers they stand for. NaN has no place
//! in the order and is refused; `-0.0` is `0.0`.

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::extractor::Term;

/// Why a term cannot be indexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermError {
    /// NaN is not ordered.
    #[error("NaN cannot be indexed")]
    NaN,
    /// The text does not decode.
    #[error("not an encoded term: {0:?}")]
    Malformed(String),
}

/// A float's bits, flipped so that unsigned order is numeric order.
fn ordered_f64(f: f64) -> u64 {
    let bits = if f == 0.0 {
        0.0f64.to_bits()
    } else {
        f.to_bits()
    };
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn from_ordered_f64(o: u64) -> f64 {
    let bits = if o >> 63 == 1 { o & !(1 << 63) } else { !o };
    f64::from_bits(bits)
}

/// The (rounded, remainder) pair of a number.
fn number_parts(term: &Term) -> Option<(f64, i64)> {
    match term {
        Term::Integer(i) => {
            let f = *i as f64;
            // `f` can be 2^63 for i near i64::MAX: compute the remainder in i128.
            let r = i128::from(*i) - f as i128;
            Some((f, r as i64))
        }
        Term::Float(f) => Some((if *f == 0.0 { 0.0 } else { *f }, 0)),
        _ => None,
    }
}

/// The key text of `term`.
pub fn encode(term: &Term) -> Result<String, TermError> {
    let mut out = String::new();
    match term {
        Term::Boolean(b) => out.push_str(if *b { "b1" } else { "b0" }),
        Term::Integer(_) | Term::Float(_) => {
            let (f, r) = number_parts(term).ok_or(TermError::NaN)?;
            if f.is_nan() {
                return Err(TermError::NaN);
            }
            let _ = write!(
                out,
                "n{:016x}{:016x}",
                ordered_f64(f),
                (r as u64) ^ (1 << 63)
            );
        }
        Term::Text(s) => {
            out.push('s');
            out.push_str(s);
        }
        Term::Bytes(b) => {
            out.push('x');
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
        }
    }
    Ok(out)
}

/// The term of key text made by [`encode`]. Numbers come back as integers when they
/// are whole and fit, as floats otherwise.
pub fn decode(text: &str) -> Result<Term, TermError> {
    let bad = || TermError::Malformed(text.to_string());
    let (tag, body) = text.split_at_checked(1).ok_or_else(bad)?;
    match tag {
        "b" => match body {
            "0" => Ok(Term::Boolean(false)),
            "1" => Ok(Term::Boolean(true)),
            _ => Err(bad()),
        },
        "n" => {
            if body.len() != 32 || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            let o = u64::from_str_radix(&body[..16], 16).map_err(|_| bad())?;
            let r = (u64::from_str_radix(&body[16..], 16).map_err(|_| bad())? ^ (1 << 63)) as i64;
            let f = from_ordered_f64(o);
            if f.fract() == 0.0 && f.abs() <= 9.3e18 {
                let whole = f as i128 + i128::from(r);
                if let Ok(i) = i64::try_from(whole) {
                    return Ok(Term::Integer(i));
                }
            }
            if r != 0 {
                return Err(bad());
            }
            Ok(Term::Float(f))
        }
        "s" => Ok(Term::Text(body.to_string())),
        "x" => {
            if body.len() % 2 != 0 || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            (0..body.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&body[i..i + 2], 16).map_err(|_| bad()))
                .collect::<Result<Vec<u8>, _>>()
                .map(Term::Bytes)
        }
        _ => Err(bad()),
    }
}

/// The order of terms that [`encode`] preserves: by type (boolean, number, text,
/// bytes), then by value.
pub fn compare(a: &Term, b: &Term) -> Ordering {
    fn rank(t: &Term) -> u8 {
        match t {
            Term::Boolean(_) => 0,
            Term::Integer(_) | Term::Float(_) => 1,
            Term::Text(_) => 2,
            Term::Bytes(_) => 3,
        }
    }
    match (a, b) {
        (Term::Boolean(x), Term::Boolean(y)) => x.cmp(y),
        (Term::Text(x), Term::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Term::Bytes(x), Term::Bytes(y)) => x.cmp(y),
        _ => match (number_parts(a), number_parts(b)) {
            (Some((fa, ra)), Some((fb, rb))) => fa.total_cmp(&fb).then(ra.cmp(&rb)),
            _ => rank(a).cmp(&rank(b)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn term() -> impl Strategy<Value = Term> {
        prop_oneof![
            any::<bool>().prop_map(Term::Boolean),
            any::<i64>().prop_map(Term::Integer),
            prop_oneof![
                any::<i64>().prop_map(|i| i as f64),
                (-1e300f64..1e300),
                Just(0.5),
                Just(-0.0),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(9.007199254740993e15)
            ]
            .prop_map(Term::Float),
            ".{0,12}".prop_map(Term::Text),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Term::Bytes),
        ]
    }

    proptest! {
        #[test]
        fn encoding_preserves_order(a in term(), b in term()) {
            let (ea, eb) = (encode(&a).expect("a"), encode(&b).expect("b"));
            prop_assert_eq!(ea.as_bytes().cmp(eb.as_bytes()), compare(&a, &b), "{:?} {:?} -> {} {}", a, b, ea, eb);
        }

        #[test]
        fn encoding_round_trips(t in term()) {
            let back = decode(&encode(&t).expect("encode")).expect("decode");
            prop_assert_eq!(compare(&back, &t), Ordering::Equal, "{:?} -> {:?}", t, back);
        }

        #[test]
        fn decoding_garbage_never_panics(s in ".{0,40}") {
            let _ = decode(&s);
        }
    }

    #[test]
    fn bytes_with_text_that_is_not_hex_are_malformed() {
        // Four bytes of one character: cutting it in two-byte pieces would panic.
        for text in ["x\u{10000}", "xab\u{e9}", "xzz"] {
            assert!(
                matches!(decode(text), Err(TermError::Malformed(_))),
                "{text:?}"
            );
        }
        assert_eq!(decode("xab01"), Ok(Term::Bytes(vec![0xab, 0x01])));
    }

    #[test]
    fn integers_and_floats_meet() {
        let enc = |t: Term| encode(&t).expect("encode");
        assert_eq!(enc(Term::Integer(30)), enc(Term::Float(30.0)));
        assert_eq!(enc(Term::Float(-0.0)), enc(Term::Float(0.0)));
        assert!(enc(Term::Integer(i64::MAX - 1)) < enc(Term::Integer(i64::MAX)));
        assert!(
            enc(Term::Integer(9_007_199_254_740_993)) > enc(Term::Float(9_007_199_254_740_992.0))
        );
        assert!(enc(Term::Float(29.5)) < enc(Term::Integer(30)));
        assert_eq!(encode(&Term::Float(f64::NAN)), Err(TermError::NaN));
        assert_eq!(
            decode("n").expect_err("malformed"),
            TermError::Malformed("n".into())
        );
        assert_eq!(
            decode(&enc(Term::Integer(i64::MIN))).expect("min"),
            Term::Integer(i64::MIN)
        );
        assert_eq!(
            decode(&enc(Term::Float(0.25))).expect("q"),
            Term::Float(0.25)
        );
    }
}
