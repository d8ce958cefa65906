//! The registry's text format (registry4.md §1).
//!
//! Every file of the registry holds lines of words. Words are quoted sh(1)-style with single quotes
//! only, as Inferno's `%q` writes them and `String->unquoted` reads them. A service line is the
//! service name followed by attribute/value pairs.

use std::fmt::Write as _;

/// Whether Inferno's `%q` would quote `word`: it is empty, or holds a quote or any character
/// at or below a blank (blank, tab, newline, any control character).
pub fn needs_quote(word: &str) -> bool {
    // Byte-wise: every byte of a multi-byte UTF-8 character is above a blank.
    word.is_empty() || word.bytes().any(|b| b <= b' ' || b == b'\'')
}

/// Appends `word` to `out` as Inferno's `%q` writes it.
pub fn push_quoted(out: &mut String, word: &str) {
    if !needs_quote(word) {
        out.push_str(word);
        return;
    }
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
}

/// `word` as Inferno's `%q` writes it.
pub fn quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    push_quoted(&mut out, word);
    out
}

/// Words joined by single blanks, each quoted as `%q` does.
pub fn quote_words<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, w) in words.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_quoted(&mut out, w);
    }
    out
}

/// Splits `line` into words as Inferno's `String->unquoted` does: blanks, tabs and newlines outside
/// quotes separate words; `''` inside quotes is one quote; quotes may start mid-word; an unbalanced
/// final quote is taken as closed.
pub fn unquote(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| matches!(c, ' ' | '\t' | '\n')).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        let mut in_quote = false;
        while let Some(c) = chars.next() {
            if in_quote {
                if c == '\'' {
                    if chars.next_if_eq(&'\'').is_some() {
                        word.push('\'');
                    } else {
                        in_quote = false;
                    }
                } else {
                    word.push(c);
                }
            } else if c == '\'' {
                in_quote = true;
            } else if matches!(c, ' ' | '\t' | '\n') {
                break;
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// Why a line is not a well-formed service line or query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The line holds no words at all.
    #[error("bad syntax")]
    Empty,
    /// The words after the name (or, in a query, all words) are not pairs.
    #[error("odd attribute/value pairs")]
    OddPairs,
}

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
    /// Parses one line `name attr val ...`.
    pub fn parse(line: &str) -> Result<ServiceLine, TextError> {
        let mut words = unquote(line).into_iter();
        let name = words.next().ok_or(TextError::Empty)?;
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
        push_quoted(out, &self.name);
        for (a, v) in &self.attrs {
            out.push(' ');
            push_quoted(out, a);
            out.push(' ');
            push_quoted(out, v);
        }
        out.push('\n');
    }
}

/// Groups `words` into attribute/value pairs.
pub fn pairs(words: Vec<String>) -> Result<Vec<(String, String)>, TextError> {
    if !words.len().is_multiple_of(2) {
        return Err(TextError::OddPairs);
    }
    let mut out = Vec::with_capacity(words.len() / 2);
    let mut it = words.into_iter();
    while let (Some(a), Some(v)) = (it.next(), it.next()) {
        out.push((a, v));
    }
    Ok(out)
}

/// Parses `attr val ...` pairs from one write (a query or an attribute update).
pub fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, TextError> {
    pairs(unquote(text))
}

/// Formats pairs as `attr val ...` with `%q` quoting and no newline, as Limbo clients write them.
/// A value of `*` is written bare, as `%q` leaves it.
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

/// Parses a whole file of service lines, as the Limbo reader does: a line with an even number of
/// words (a name without a value for its last attribute) is skipped, as are blank lines.
pub fn parse_services(text: &str) -> Vec<ServiceLine> {
    text.split('\n')
        .filter_map(|line| ServiceLine::parse(line).ok())
        .collect()
}

/// Formats a change count as the `event` file reports it: `%8.8d\n`.
pub fn format_event(count: u64) -> String {
    let mut s = String::with_capacity(9);
    let _ = writeln!(s, "{count:08}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_inferno() {
        assert_eq!(quote("styx"), "styx");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's a test"), "'it''s a test'");
        assert_eq!(quote("*"), "*");
        assert_eq!(quote("a\tb"), "'a\tb'");
        assert_eq!(quote("tcp!127.0.0.1!7001"), "tcp!127.0.0.1!7001");
    }

    #[test]
    fn unquoting_matches_inferno() {
        assert_eq!(unquote("a b\tc\nd"), ["a", "b", "c", "d"]);
        assert_eq!(unquote("''"), [""]);
        assert_eq!(unquote("'it''s a test'"), ["it's a test"]);
        assert_eq!(unquote("a'b c'"), ["ab c"]);
        assert_eq!(unquote("'open"), ["open"]);
        assert_eq!(unquote("   "), Vec::<String>::new());
    }

    #[test]
    fn captured_register_line_round_trips() {
        // registry4.md §10 / limbo-registries-9p.md message 13
        let line = "tcp!127.0.0.1!7001 proto styx description 'it''s a test' empty ''";
        let s = ServiceLine::parse(line).unwrap();
        assert_eq!(s.name, "tcp!127.0.0.1!7001");
        assert_eq!(s.attrs[1], ("description".into(), "it's a test".into()));
        assert_eq!(s.attrs[2], ("empty".into(), "".into()));
        assert_eq!(s.format(), format!("{line}\n"));
    }

    #[test]
    fn odd_pairs_and_empty() {
        assert_eq!(ServiceLine::parse(""), Err(TextError::Empty));
        assert_eq!(ServiceLine::parse("a b"), Err(TextError::OddPairs));
        assert_eq!(
            parse_pairs("auth *").unwrap(),
            [("auth".into(), "*".into())]
        );
        assert_eq!(parse_pairs("x"), Err(TextError::OddPairs));
        assert_eq!(
            parse_services("a b c\nodd x\n\n"),
            [ServiceLine::parse("a b c").unwrap()]
        );
    }

    #[test]
    fn event_format() {
        assert_eq!(format_event(12), "00000012\n");
    }

    proptest::proptest! {
        #[test]
        fn quote_unquote_round_trip(words in proptest::collection::vec(".*", 1..6)) {
            let line = quote_words(words.iter().map(String::as_str));
            proptest::prop_assert_eq!(unquote(&line), words);
        }
    }
}
