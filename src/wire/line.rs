//! One service line (spec/registry.md §1): the service name followed by attribute/value pairs,
//! every word `%q`-quoted. The server writes these lines into `index`, `find` and service files;
//! registries(2) writes them, without the newline, to `new`, `find` and service files.

use super::Diagnostic;
use super::quote::{push_quoted, unquote};
use std::fmt::Write as _;

/// A service as the registry's files describe it: its name (usually a dial address) and its
/// attribute/value pairs, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceLine {
    /// The service name.
    pub name: String,
    /// Attribute/value pairs in the order the line holds them.
    pub attrs: Vec<(String, String)>,
}

impl ServiceLine {
    /// Parses one line `name attr val ...`: [`Diagnostic::BadSyntax`] when it holds no words,
    /// [`Diagnostic::OddPairs`] when the words after the name are not pairs.
    // Not nom: the words are `unquote`'s; what is left is the first word and the pairs.
    pub fn parse(line: &str) -> Result<ServiceLine, Diagnostic> {
        let mut words = unquote(line).into_iter();
        let name = words.next().ok_or(Diagnostic::BadSyntax)?;
        let attrs = pairs(words.collect())?;
        Ok(ServiceLine { name, attrs })
    }

    /// Formats the line as the registry writes it, with a trailing newline.
    pub fn format(&self) -> String {
        let mut out = String::new();
        self.format_into(&mut out);
        out
    }

    /// Appends the line, with its trailing newline, to `out`.
    pub fn format_into(&self, out: &mut String) {
        push_line(out, &self.name, self.pairs());
        out.push('\n');
    }

    /// The pairs as string slices, in line order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(a, v)| (a.as_str(), v.as_str()))
    }
}

/// Appends `name` and ` attr val` per pair, `%q`-quoted, with no newline: the one formatter of a
/// service line, for the server's files and the client's writes alike.
pub fn push_line<'a>(
    out: &mut String,
    name: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    push_quoted(out, name);
    for (a, v) in pairs {
        out.push(' ');
        push_quoted(out, a);
        out.push(' ');
        push_quoted(out, v);
    }
}

/// The write that registers `name` (registries(2)'s `register`): the line in list order, then
/// ` persist 1` when `persist` is set; no newline.
pub fn register_line<'a>(
    name: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    persist: bool,
) -> String {
    let mut s = String::new();
    push_line(&mut s, name, pairs);
    if persist {
        s.push_str(" persist 1");
    }
    s
}

/// Groups `words` into attribute/value pairs: [`Diagnostic::OddPairs`] when they are odd.
pub fn pairs(words: Vec<String>) -> Result<Vec<(String, String)>, Diagnostic> {
    if !words.len().is_multiple_of(2) {
        return Err(Diagnostic::OddPairs);
    }
    let mut out = Vec::with_capacity(words.len() / 2);
    let mut it = words.into_iter();
    while let (Some(a), Some(v)) = (it.next(), it.next()) {
        out.push((a, v));
    }
    Ok(out)
}

/// Parses `attr val ...` pairs from one write (a query or an attribute update).
// Not nom: `unquote`'s words taken two by two.
pub fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, Diagnostic> {
    pairs(unquote(text))
}

/// Formats pairs as `attr val ...` with `%q` quoting and no newline, as registries(2) writes a
/// `find` query: empty for no pairs, and a value of `*` bare, as `%q` leaves it.
pub fn format_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (a, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_quoted(&mut out, a);
        out.push(' ');
        push_quoted(&mut out, v);
    }
    out
}

/// Formats a change count as the `event` file reports it: `%8.8d\n`.
pub fn format_event(count: u64) -> String {
    let mut s = String::with_capacity(9);
    let _ = writeln!(s, "{count:08}");
    s
}

/// Parses one report of the `event` file (`%8.8d\n`, or the shim's event line).
// Not nom: one decimal number.
pub fn parse_event(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_register_line_round_trips() {
        // spec/vectors/limbo-registries-9p.md message 13.
        let line = "tcp!127.0.0.1!7001 proto styx description 'it''s a test' empty ''";
        let s = ServiceLine::parse(line).unwrap();
        assert_eq!(s.name, "tcp!127.0.0.1!7001");
        assert_eq!(s.attrs[1], ("description".into(), "it's a test".into()));
        assert_eq!(s.attrs[2], ("empty".into(), "".into()));
        assert_eq!(s.format(), format!("{line}\n"));
    }

    #[test]
    fn register_lines_match_the_capture() {
        // spec/vectors/limbo-registries-9p.md messages 13 and 19.
        assert_eq!(
            register_line(
                "tcp!127.0.0.1!7001",
                [
                    ("proto", "styx"),
                    ("description", "it's a test"),
                    ("empty", "")
                ],
                false
            ),
            "tcp!127.0.0.1!7001 proto styx description 'it''s a test' empty ''"
        );
        assert_eq!(
            register_line(
                "tcp!127.0.0.1!7002",
                [("proto", "styx"), ("auth", "infpk1")],
                true
            ),
            "tcp!127.0.0.1!7002 proto styx auth infpk1 persist 1"
        );
        assert_eq!(register_line("a b", [], false), "'a b'");
    }

    #[test]
    fn query_lines_match_the_capture() {
        // Messages 29, 41, 53.
        assert_eq!(format_pairs([("proto", "styx")]), "proto styx");
        assert_eq!(format_pairs([("auth", "*")]), "auth *");
        assert_eq!(format_pairs([]), "");
    }

    #[test]
    fn odd_pairs_and_empty() {
        assert_eq!(ServiceLine::parse(""), Err(Diagnostic::BadSyntax));
        assert_eq!(ServiceLine::parse("a b"), Err(Diagnostic::OddPairs));
        assert_eq!(
            parse_pairs("auth *").unwrap(),
            [("auth".into(), "*".into())]
        );
        assert_eq!(parse_pairs("x"), Err(Diagnostic::OddPairs));
    }

    #[test]
    fn events_format_and_parse() {
        assert_eq!(format_event(12), "00000012\n");
        assert_eq!(parse_event(b"00000012\n"), Some(12));
        assert_eq!(parse_event(b"junk"), None);
        assert_eq!(parse_event(&[0xff]), None);
    }
}
