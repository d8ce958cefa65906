//! The registry's rules for names and attributes (spec/registry.md §3): which service names are
//! allowed, which are reserved, and when an entry persists.

use super::Diagnostic;

/// The names of the registry's own files, which no service may take.
pub const RESERVED_NAMES: [&str; 4] = ["new", "event", "find", "index"];

/// The attribute whose non-zero value keeps a service registered after the fid that made it is
/// clunked.
pub const PERSIST: &str = "persist";

/// Inferno's `svcnameok` without the duplicate check (which needs the catalog): characters first,
/// then the empty and reserved names.
pub fn check_name(name: &str) -> Result<(), Diagnostic> {
    if name.chars().any(|c| c <= ' ' || c == '/' || c == '\x7f') {
        return Err(Diagnostic::BadChar);
    }
    if name.is_empty() || RESERVED_NAMES.contains(&name) {
        return Err(Diagnostic::BadName);
    }
    Ok(())
}

/// Whether Limbo's string-to-int conversion (C `strtol(s, nil, 10)`) gives a non-zero value:
/// leading white space, an optional sign, then decimal digits. Out-of-range values clamp, so any
/// non-zero digit makes the result non-zero.
pub fn limbo_int_nonzero(s: &str) -> bool {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    t.chars().take_while(char::is_ascii_digit).any(|c| c != '0')
}

/// Whether a service with these pairs outlives the fid that registered it: its first `persist`
/// value converts to a non-zero Limbo `int`.
pub fn persists<'a>(mut pairs: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    pairs
        .find(|(a, _)| *a == PERSIST)
        .is_some_and(|(_, v)| limbo_int_nonzero(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_svcnameok_does() {
        assert!(check_name("tcp!h!1").is_ok());
        assert_eq!(check_name("a b"), Err(Diagnostic::BadChar));
        assert_eq!(check_name("a/b"), Err(Diagnostic::BadChar));
        assert_eq!(check_name("a\x7f"), Err(Diagnostic::BadChar));
        assert_eq!(check_name("new"), Err(Diagnostic::BadName));
        assert_eq!(check_name(""), Err(Diagnostic::BadName));
    }

    #[test]
    fn persist_converts_as_limbo() {
        assert!(limbo_int_nonzero("1"));
        assert!(limbo_int_nonzero("  -007x"));
        assert!(!limbo_int_nonzero("0"));
        assert!(!limbo_int_nonzero("yes"));
        assert!(persists([("a", "b"), ("persist", "1")].into_iter()));
        assert!(!persists([("persist", "0"), ("persist", "1")].into_iter()));
    }
}
