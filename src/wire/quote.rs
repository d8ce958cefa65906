//! Words as the registry's files hold them (spec/registry.md §1): quoted sh(1)-style with single
//! quotes only, as Inferno's `%q` writes them and `String->unquoted` reads them.

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
// Hand-written, not nom: this grammar written with nom 8 (benches/text.rs) reads no shorter and
// is about a quarter slower per service line (spec/packages.md §2), on the path of every 9P write.
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

    proptest::proptest! {
        #[test]
        fn quote_unquote_round_trip(words in proptest::collection::vec(".*", 1..6)) {
            let line = quote_words(words.iter().map(String::as_str));
            proptest::prop_assert_eq!(unquote(&line), words);
        }
    }
}
