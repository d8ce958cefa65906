//! Reading a whole `index` or `find` reply as registries(2)'s `readservices` does
//! (spec/registry.md §1): a newline ends a record only outside quotes (Limbo's `qgets`), so a value
//! may hold a newline; records with no words, or with an even number of words, are skipped.

use super::ServiceLine;
use std::borrow::Cow;

/// Parses the services in an `index` or `find` reply as Limbo's `readservices` does: records with
/// no words, or with an even number of words, are skipped.
///
/// One pass over the bytes does both of Limbo's steps, `qgets` (a newline ends a record only
/// outside quotes) and `unquoted` (blanks outside quotes separate words): they share one quoting
/// state machine, so a record ends exactly where a word ends on an unquoted newline. Every
/// delimiter is ASCII, so byte offsets always fall on character boundaries. Words without quotes
/// are copied straight from the text; the words of a record are gathered in one reused buffer.
// Hand-written, not nom: where a record ends depends on the quoting state of the word being read,
// so one byte-level pass serves both steps without copying bare words; a combinator grammar would
// split them, and nom was slower already on the word grammar alone (spec/packages.md §2).
pub fn parse_services(text: &str) -> Vec<ServiceLine> {
    let mut out = Vec::new();
    each_service(text, |name, words| {
        let attrs = word_pairs(words)
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect();
        out.push(ServiceLine {
            name: name.to_string(),
            attrs,
        });
    });
    out
}

/// [`parse_services`] without building its lines: calls `f` with each kept record's name and the
/// words after it (an even number), borrowed from `text` where they have no quotes, so that a
/// caller makes only the strings it keeps.
pub(crate) fn each_service<'a>(text: &'a str, mut f: impl FnMut(&str, &[Cow<'a, str>])) {
    let bytes = text.as_bytes();
    let mut words: Vec<Cow<'a, str>> = Vec::new();
    let mut i = 0;
    loop {
        // Skip blanks; an unquoted newline among them ends the record.
        let mut end_of_record = false;
        while let Some(&b) = bytes.get(i) {
            match b {
                b' ' | b'\t' => i += 1,
                b'\n' => {
                    i += 1;
                    end_of_record = true;
                    break;
                }
                _ => break,
            }
        }
        if !end_of_record && i < bytes.len() {
            let (word, next, newline) = next_word(text, i);
            words.push(word);
            i = next;
            end_of_record = newline;
        }
        if end_of_record || i >= bytes.len() {
            // Records with no words or an even number are skipped, as Limbo does.
            if let Some((name, rest)) = words.split_first()
                && rest.len() % 2 == 0
            {
                f(name, rest);
            }
            words.clear();
            if i >= bytes.len() {
                return;
            }
        }
    }
}

/// The words after a record's name (an even number), two by two.
pub(crate) fn word_pairs<W: AsRef<str>>(words: &[W]) -> impl Iterator<Item = (&str, &str)> {
    words.chunks_exact(2).filter_map(|p| match p {
        [a, v] => Some((a.as_ref(), v.as_ref())),
        _ => None,
    })
}

/// The word starting at `start` (not a blank): the word, where scanning goes on, and whether
/// the word ended on an unquoted newline (which ends its record).
fn next_word(text: &str, start: usize) -> (Cow<'_, str>, usize, bool) {
    let bytes = text.as_bytes();
    // Fast path: a word without quotes is a plain slice.
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\n' => {
                let word = text.get(start..i).unwrap_or_default();
                return (Cow::Borrowed(word), i + 1, b == b'\n');
            }
            b'\'' => break,
            _ => i += 1,
        }
    }
    if i >= bytes.len() {
        return (
            Cow::Borrowed(text.get(start..).unwrap_or_default()),
            i,
            false,
        );
    }
    // Slow path, as `String->unquoted`: quotes may start mid-word, `''` inside quotes is one
    // quote, an unbalanced final quote counts as closed.
    let mut word: Vec<u8> = bytes.get(start..i).unwrap_or_default().to_vec();
    let mut in_quote = false;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if in_quote {
            if b == b'\'' {
                if bytes.get(i) == Some(&b'\'') {
                    word.push(b'\'');
                    i += 1;
                } else {
                    in_quote = false;
                }
            } else {
                word.push(b);
            }
        } else {
            match b {
                b'\'' => in_quote = true,
                b' ' | b'\t' | b'\n' => {
                    let word = String::from_utf8(word).unwrap_or_default();
                    return (Cow::Owned(word), i, b == b'\n');
                }
                _ => word.push(b),
            }
        }
    }
    (
        Cow::Owned(String::from_utf8(word).unwrap_or_default()),
        i,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{pairs, unquote};

    #[test]
    fn parses_the_captured_index() {
        // Message 22.
        let text = "tcp!127.0.0.1!7001 empty '' description 'it''s a test' proto styx\n\
                    tcp!127.0.0.1!7002 persist 1 auth infpk1 proto styx\n";
        let s = parse_services(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "tcp!127.0.0.1!7001");
        let pairs: Vec<_> = s[0].pairs().collect();
        assert_eq!(
            pairs,
            [
                ("empty", ""),
                ("description", "it's a test"),
                ("proto", "styx")
            ]
        );
        assert_eq!(s[1].pairs().next(), Some(("persist", "1")));
    }

    #[test]
    fn newline_inside_quotes_does_not_split() {
        let s = parse_services("a x 'line1\nline2'\nb y z\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].pairs().next(), Some(("x", "line1\nline2")));
        assert_eq!(s[1].name, "b");
    }

    #[test]
    fn skips_even_and_empty_records() {
        let s = parse_services("\nodd x\nok a b\nlast");
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok", "last"]);
    }

    /// The straightforward reading, record split then `unquote`: the oracle for the fast one.
    fn records(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut in_quote = false;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if in_quote {
                if c == '\'' && chars.next_if(|&(_, c)| c == '\'').is_none() {
                    in_quote = false;
                }
            } else if c == '\n' {
                out.push(&text[start..=i]);
                start = i + 1;
            } else if c == '\'' {
                in_quote = true;
            }
        }
        if start < text.len() {
            out.push(&text[start..]);
        }
        out
    }

    fn slow_parse(text: &str) -> Vec<ServiceLine> {
        records(text)
            .into_iter()
            .filter_map(|rec| {
                let mut words = unquote(rec).into_iter();
                let name = words.next()?;
                let attrs = pairs(words.collect()).ok()?;
                Some(ServiceLine { name, attrs })
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn fast_parse_matches_the_oracle(text in "[ab'\n\t é]{0,40}") {
            proptest::prop_assert_eq!(parse_services(&text), slow_parse(&text));
        }
    }
}
