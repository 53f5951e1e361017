//! Names of instances, plugins and indexes. They become URL path segments, directory
//! names and parts of internal keys, so one allow-list serves them all.

/// The longest name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// True for 1 to [`MAX_NAME_LEN`] of `a-z 0-9 _ -`, starting with a letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// [`is_valid_name`], with the rule in the error.
pub fn check_name(name: &str) -> Result<(), String> {
    match is_valid_name(name) {
        true => Ok(()),
        false => Err(format!(
            "invalid name {name:?}: use 1 to {MAX_NAME_LEN} of a-z, 0-9, '_' and '-', starting with a letter or digit"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list() {
        for ok in [
            "a",
            "users",
            "by_city",
            "v2-x",
            "0day",
            &"a".repeat(MAX_NAME_LEN),
        ] {
            assert!(is_valid_name(ok), "{ok:?}");
        }
        for bad in [
            "",
            "_x",
            "-x",
            "Users",
            "a b",
            "a/b",
            "a.b",
            "é",
            &"a".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
