//! The text registries(2) writes to and reads from the registry's files.
//!
//! Writers follow the Limbo module byte for byte (vectors/limbo-registries-9p.md, messages 13, 19,
//! 29, 41, 53): no trailing newline, `%q` quoting, `*` bare. The reader follows Limbo's `qgets`: a
//! newline inside quotes does not end a line, which `text::parse_services` (a plain split on
//! newlines) does not do, so the client keeps its own record splitter here.

use super::Service;
use super::attributes::Attributes;
use crate::text::push_quoted;

/// The write that registers `addr`: `%q` of the address, ` %q %q` per pair in list order, then
/// ` persist 1` when `persist` is set.
pub fn register_line(addr: &str, attrs: &Attributes, persist: bool) -> String {
    let mut s = String::new();
    push_quoted(&mut s, addr);
    for (a, v) in attrs.iter() {
        s.push(' ');
        push_quoted(&mut s, a);
        s.push(' ');
        push_quoted(&mut s, v);
    }
    if persist {
        s.push_str(" persist 1");
    }
    s
}

/// The write that sets a `find` filter: `%q %q` pairs joined by blanks; empty for no pairs.
pub fn query_line<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    crate::text::format_pairs(pairs)
}

/// Parses the services in an `index` or `find` reply as Limbo's `readservices` does: records with
/// no words, or with an even number of words, are skipped.
///
/// One pass over the bytes does both of Limbo's steps, `qgets` (a newline ends a record only
/// outside quotes) and `unquoted` (blanks outside quotes separate words): they share one quoting
/// state machine, so a record ends exactly where a word ends on an unquoted newline. Every
/// delimiter is ASCII, so byte offsets always fall on character boundaries. Words without quotes
/// are copied straight from the text; the words of a record are gathered in one reused buffer.
pub fn parse_services(text: &str) -> Vec<Service> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
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
            push_record(&mut out, &mut words);
            if i >= bytes.len() {
                return out;
            }
        }
    }
}

/// Turns the words of one record into a service, unless it has none or an even number.
fn push_record(out: &mut Vec<Service>, words: &mut Vec<String>) {
    if words.len() % 2 == 1 {
        let mut it = words.drain(..);
        if let Some(addr) = it.next() {
            let mut attrs = Vec::with_capacity(it.len() / 2);
            while let (Some(a), Some(v)) = (it.next(), it.next()) {
                attrs.push((a, v));
            }
            out.push(Service {
                addr,
                attrs: Attributes { attrs },
            });
        }
    }
    words.clear();
}

/// The word starting at `start` (not a blank): the word, where scanning goes on, and whether
/// the word ended on an unquoted newline (which ends its record).
fn next_word(text: &str, start: usize) -> (String, usize, bool) {
    let bytes = text.as_bytes();
    // Fast path: a word without quotes is a plain slice.
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\n' => {
                let word = text.get(start..i).unwrap_or_default().to_string();
                return (word, i + 1, b == b'\n');
            }
            b'\'' => break,
            _ => i += 1,
        }
    }
    if i >= bytes.len() {
        return (text.get(start..).unwrap_or_default().to_string(), i, false);
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
                    return (word, i, b == b'\n');
                }
                _ => word.push(b),
            }
        }
    }
    (String::from_utf8(word).unwrap_or_default(), i, false)
}

/// Parses one report from the `event` file (`%8.8d\n`).
pub fn parse_event(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_lines_match_the_capture() {
        // limbo-registries-9p.md messages 13 and 19.
        let a = Attributes::new([
            ("proto", "styx"),
            ("description", "it's a test"),
            ("empty", ""),
        ]);
        assert_eq!(
            register_line("tcp!127.0.0.1!7001", &a, false),
            "tcp!127.0.0.1!7001 proto styx description 'it''s a test' empty ''"
        );
        let b = Attributes::new([("proto", "styx"), ("auth", "infpk1")]);
        assert_eq!(
            register_line("tcp!127.0.0.1!7002", &b, true),
            "tcp!127.0.0.1!7002 proto styx auth infpk1 persist 1"
        );
        assert_eq!(register_line("a b", &Attributes::default(), false), "'a b'");
    }

    #[test]
    fn query_lines_match_the_capture() {
        // Messages 29, 41, 53.
        assert_eq!(query_line([("proto", "styx")]), "proto styx");
        assert_eq!(query_line([("auth", "*")]), "auth *");
        assert_eq!(query_line([("nosuch", "x")]), "nosuch x");
        assert_eq!(query_line([]), "");
    }

    #[test]
    fn parses_the_captured_index() {
        // Message 22.
        let text = "tcp!127.0.0.1!7001 empty '' description 'it''s a test' proto styx\n\
                    tcp!127.0.0.1!7002 persist 1 auth infpk1 proto styx\n";
        let s = parse_services(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].addr, "tcp!127.0.0.1!7001");
        assert_eq!(
            s[0].attrs,
            Attributes::new([
                ("empty", ""),
                ("description", "it's a test"),
                ("proto", "styx")
            ])
        );
        assert_eq!(s[1].attrs.get("persist"), Some("1"));
    }

    #[test]
    fn newline_inside_quotes_does_not_split() {
        let s = parse_services("a x 'line1\nline2'\nb y z\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].attrs.get("x"), Some("line1\nline2"));
        assert_eq!(s[1].addr, "b");
    }

    #[test]
    fn skips_even_and_empty_records() {
        let s = parse_services("\nodd x\nok a b\nlast");
        let names: Vec<_> = s.iter().map(|s| s.addr.as_str()).collect();
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

    fn slow_parse(text: &str) -> Vec<Service> {
        records(text)
            .into_iter()
            .filter_map(|rec| {
                let mut words = crate::text::unquote(rec).into_iter();
                let addr = words.next()?;
                let pairs = crate::text::pairs(words.collect()).ok()?;
                Some(Service {
                    addr,
                    attrs: Attributes { attrs: pairs },
                })
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn fast_parse_matches_the_oracle(text in "[ab'\n\t é]{0,40}") {
            proptest::prop_assert_eq!(parse_services(&text), slow_parse(&text));
        }
    }

    #[test]
    fn events_parse() {
        assert_eq!(parse_event(b"00000012\n"), Some(12));
        assert_eq!(parse_event(b"junk"), None);
        assert_eq!(parse_event(&[0xff]), None);
    }
}
