//! One attrdb(6) file as text: lines, entries and the static services they describe.
//!
//! Follows Inferno's `appl/lib/attrdb.b`: an entry starts with a line whose first character is not
//! blank, tab, newline or `#`; every following line that does not start that way (indented lines,
//! empty lines, `#` comments) continues it. A line holds `attr=value` pairs (or a bare `attr`);
//! values may be quoted with `'` or `"` (a doubled quote inside is one quote); `#` outside quotes
//! ends the line. Inferno skips a line it cannot parse and keeps the rest of the entry.
//! No I/O here: [`super::files`] decides which files make up a database.

/// Why a line cannot be parsed (Inferno's diagnostics).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrdbError {
    /// An `=` with no attribute name before it.
    #[error("line {line}: empty name")]
    EmptyName {
        /// 1-based line number in the file.
        line: usize,
    },
    /// A quote is not closed by the end of the line.
    #[error("line {line}: missing quote")]
    MissingQuote {
        /// 1-based line number in the file.
        line: usize,
    },
}

/// One line's attribute/value pairs; a bare attribute has an empty value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the file.
    pub line: usize,
    /// The pairs in line order.
    pub pairs: Vec<(String, String)>,
}

/// One entry: its lines that hold at least one pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The entry's lines in file order.
    pub lines: Vec<Line>,
}

impl Entry {
    /// Whether some line has attribute `attr`.
    pub fn has_attr(&self, attr: &str) -> bool {
        self.pairs().any(|(a, _)| a == attr)
    }

    /// The value of the first `attr` pair (Inferno's `findfirst`).
    pub fn find_first(&self, attr: &str) -> Option<&str> {
        self.pairs()
            .find(|(a, _)| a == attr)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs of all lines, in file order.
    pub fn pairs(&self) -> impl Iterator<Item = &(String, String)> {
        self.lines.iter().flat_map(|l| l.pairs.iter())
    }
}

/// Parses one line as Inferno's `parseline` does: `Ok(None)` when it holds no pairs.
// Hand-written, not nom: it transcribes the three-register machine of attrdb.b's `parseline`, so
// Inferno's quirks (a word after a bare attribute at the end of a line is dropped) stay exact; a
// grammar would describe a cleaner language than the one Inferno reads.
pub fn parse_line(s: &str, line: usize) -> Result<Option<Line>, AttrdbError> {
    let mut pairs = Vec::new();
    let mut quote: Option<char> = None;
    // Inferno's three registers: the word being read, the previous word, and an attribute name
    // waiting for its value after `=`. Empty means unset (Limbo's nil string is "").
    let mut word = String::new();
    let mut lastword = String::new();
    let mut name = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q && chars.next_if_eq(&q).is_none() {
                quote = None;
            } else {
                word.push(c);
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '#' => break,
            ' ' | '\t' | '\n' => {
                if word.is_empty() {
                    continue;
                }
                if !lastword.is_empty() {
                    pairs.push((std::mem::take(&mut lastword), String::new()));
                }
                lastword = std::mem::take(&mut word);
                if !name.is_empty() {
                    pairs.push((std::mem::take(&mut name), std::mem::take(&mut lastword)));
                }
            }
            '=' => {
                if lastword.is_empty() {
                    lastword = std::mem::take(&mut word);
                }
                if !word.is_empty() {
                    pairs.push((std::mem::take(&mut lastword), String::new()));
                    lastword = std::mem::take(&mut word);
                }
                if lastword.is_empty() {
                    return Err(AttrdbError::EmptyName { line });
                }
                name = std::mem::take(&mut lastword);
            }
            _ => word.push(c),
        }
    }
    if quote.is_some() {
        return Err(AttrdbError::MissingQuote { line });
    }
    // At the end Inferno keeps at most one more pair; a trailing word after a bare attribute
    // (`a b`) is dropped, as there.
    if lastword.is_empty() {
        lastword = std::mem::take(&mut word);
    }
    if name.is_empty() {
        name = std::mem::take(&mut lastword);
    }
    if !name.is_empty() {
        pairs.push((name, lastword));
    }
    Ok((!pairs.is_empty()).then_some(Line { line, pairs }))
}

/// Whether a line starts an entry (Inferno's `isentry`).
fn is_entry_start(l: &str) -> bool {
    l.chars()
        .next()
        .is_some_and(|c| !matches!(c, '\t' | '\n' | ' ' | '#'))
}

/// Parses a whole file as Inferno reads it: bad lines are skipped and reported in the second
/// value; lines before the first entry are ignored.
// Not nom: entries are runs of lines, decided by each line's first character.
pub fn parse_lenient(text: &str) -> (Vec<Entry>, Vec<AttrdbError>) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut errors = Vec::new();
    let mut current: Option<Entry> = None;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if is_entry_start(l) {
            entries.extend(current.take());
            current = Some(Entry::default());
        }
        let Some(entry) = current.as_mut() else {
            continue;
        };
        match parse_line(l, i + 1) {
            Ok(Some(line)) => entry.lines.push(line),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    entries.extend(current);
    (entries, errors)
}

/// Parses a whole file strictly: the first line that Inferno would skip is an error.
pub fn parse(text: &str) -> Result<Vec<Entry>, AttrdbError> {
    let (entries, errors) = parse_lenient(text);
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(entries),
    }
}

/// The static services of a database's entries, all its files in order (Inferno's `dbload`):
/// every entry with a `service` attribute and a non-empty first `service` value gives that name
/// and all the entry's other pairs, in file order (the registry adds them one by one, so they
/// list in reverse).
pub fn static_services<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Vec<(String, Vec<(String, String)>)> {
    entries
        .into_iter()
        .filter_map(|e| {
            let name = e.find_first("service").filter(|n| !n.is_empty())?;
            let attrs = e.pairs().filter(|(a, _)| a != "service").cloned().collect();
            Some((name.to_string(), attrs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        parse_line(s, 1)
            .unwrap()
            .map(|l| l.pairs)
            .unwrap_or_default()
    }

    fn p(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn lines() {
        assert_eq!(
            pairs("service=net!click!1234\n"),
            p(&[("service", "net!click!1234")])
        );
        assert_eq!(
            pairs("\tdescription='snapshot service' auth=none\n"),
            p(&[("description", "snapshot service"), ("auth", "none")])
        );
        assert_eq!(pairs("a= b c"), p(&[("a", "b"), ("c", "")]));
        // Inferno's quirk: a last bare word is lost unless the line ends in white space.
        assert_eq!(pairs("a b"), p(&[("a", "")]));
        assert_eq!(pairs("a b\n"), p(&[("a", ""), ("b", "")]));
        assert_eq!(pairs("a b c=d"), p(&[("a", ""), ("b", ""), ("c", "d")]));
        assert_eq!(
            pairs("x='it''s' y=\"q\"\"\" # c=d"),
            p(&[("x", "it's"), ("y", "q\"")])
        );
        assert_eq!(pairs("e=''"), p(&[("e", "")]));
        assert_eq!(parse_line("  # only a comment", 1).unwrap(), None);
        assert_eq!(parse_line("=x", 3), Err(AttrdbError::EmptyName { line: 3 }));
        assert_eq!(
            parse_line("a='x", 4),
            Err(AttrdbError::MissingQuote { line: 4 })
        );
    }

    #[test]
    fn entries_and_services() {
        let db = "# header\n\
                  service=net!click!1234\n\
                  \tdescription='snapshot service' auth=none\n\
                  # comment inside\n\
                  \n\
                  other=1\n\
                  \tservice=tcp!h!1 k=v\n\
                  \tservice=second\n\
                  service='' x=y\n\
                  \tbad='quote\n";
        let entries = parse(db).unwrap_err();
        assert_eq!(entries, AttrdbError::MissingQuote { line: 10 });
        let (entries, errors) = parse_lenient(db);
        assert_eq!(errors.len(), 1);
        assert_eq!(entries.len(), 3);
        let svcs = static_services(&entries);
        assert_eq!(
            svcs,
            vec![
                (
                    "net!click!1234".to_string(),
                    p(&[("description", "snapshot service"), ("auth", "none")])
                ),
                ("tcp!h!1".to_string(), p(&[("other", "1"), ("k", "v")])),
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "(?s).{0,200}") {
            let _ = parse_lenient(&s);
            let _ = parse(&s);
        }
    }
}
