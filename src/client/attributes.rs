//! `Attributes`: a service description, a list of attribute/value pairs.

use smallvec::SmallVec;
use std::fmt;

/// A set of attribute/value pairs, in the order registries(2) keeps them.
///
/// As in Limbo, [`Attributes::set`] puts a new attribute at the front and rebuilds the list around
/// a replaced one, and the pairs are written to the registry in list order.
///
/// ```
/// use registries::Attributes;
/// let mut a = Attributes::new([("proto", "styx"), ("auth", "none")]);
/// a.set("load", "5"); // a new attribute goes first, as in Limbo
/// assert_eq!(a.to_string(), "load 5 proto styx auth none");
/// assert_eq!(a.get("auth"), Some("none"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    // Every name and value one after the other in one string, and where each ends: a `find`
    // over many services makes one allocation a service for its pairs, a few dozen bytes
    // (spec/packages.md §4).
    text: String,
    ends: SmallVec<[u32; 6]>,
}

impl Attributes {
    /// Attributes holding `pairs` in the given order (Limbo's `Attributes.new`).
    pub fn new<A, V>(pairs: impl IntoIterator<Item = (A, V)>) -> Attributes
    where
        A: AsRef<str>,
        V: AsRef<str>,
    {
        let mut out = Attributes::default();
        for (a, v) in pairs {
            out.push(a.as_ref());
            out.push(v.as_ref());
        }
        out
    }

    /// Attributes holding the pairs of `words` (an even number: name, value, ...), in one
    /// allocation of the right size.
    pub(crate) fn from_words<W: AsRef<str>>(words: &[W]) -> Attributes {
        let words = words.get(..words.len() & !1).unwrap_or_default();
        let mut out = Attributes {
            text: String::with_capacity(words.iter().map(|w| w.as_ref().len()).sum()),
            ends: SmallVec::with_capacity(words.len()),
        };
        for w in words {
            out.push(w.as_ref());
        }
        out
    }

    /// Appends one word (a name or a value).
    fn push(&mut self, word: &str) {
        self.text.push_str(word);
        // Beyond 4 GiB of attributes the last word would be cut short; no registry line is
        // near that.
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// Word `i`.
    fn word(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).map_or(0, |&e| e as usize),
            None => 0,
        };
        let end = self.ends.get(i).map_or(start, |&e| e as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    /// The value of `attr`, if present (the first one, should a list hold it twice).
    pub fn get(&self, attr: &str) -> Option<&str> {
        self.iter().find(|(a, _)| *a == attr).map(|(_, v)| v)
    }

    /// Sets `attr` to `val` exactly as Limbo's `Attributes.set` does, since the order decides the
    /// bytes `register` writes: a new attribute goes to the front; an existing one (its first
    /// pair) takes the new value where it stands, and the pairs before it come out in reverse
    /// order, because Limbo rebuilds the list by prepending them one by one
    /// (`[a, b, X, d]` set `X` gives `[b, a, X', d]`).
    pub fn set(&mut self, attr: impl AsRef<str>, val: impl AsRef<str>) {
        let (attr, val) = (attr.as_ref(), val.as_ref());
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        match pairs.iter().position(|(a, _)| *a == attr) {
            Some(i) => {
                if let Some((_, v)) = pairs.get_mut(i) {
                    *v = val;
                }
                if let Some(before) = pairs.get_mut(..i) {
                    before.reverse();
                }
            }
            None => pairs.insert(0, (attr, val)),
        }
        *self = Attributes::new(pairs);
    }

    /// The pairs as string slices, first to last.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        (0..self.len()).map(move |i| (self.word(2 * i), self.word(2 * i + 1)))
    }

    /// The pairs as owned strings, first to last.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect()
    }

    /// Whether `self` and `other` hold the same pairs, in any order (as a multiset): what a
    /// registry that lists attributes in its own order cannot tell apart.
    pub fn same_pairs(&self, other: &Attributes) -> bool {
        if self.len() != other.len() {
            return false;
        }
        let mut x: Vec<(&str, &str)> = self.iter().collect();
        let mut y: Vec<(&str, &str)> = other.iter().collect();
        x.sort_unstable();
        y.sort_unstable();
        x == y
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<A: AsRef<str>, V: AsRef<str>> FromIterator<(A, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (A, V)>>(iter: I) -> Self {
        Attributes::new(iter)
    }
}

/// Formats as the registry writes pairs: `attr val ...`, each word `%q`-quoted.
impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::wire::format_pairs(self.iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_finds_first() {
        let a = Attributes::new([("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(a.get("a"), Some("1"));
        assert_eq!(a.get("b"), Some("2"));
        assert_eq!(a.get("c"), None);
    }

    #[test]
    fn set_replaces_in_place_or_prepends() {
        let mut a = Attributes::new([("proto", "styx"), ("auth", "none")]);
        a.set("auth", "infpk1");
        assert_eq!(a, Attributes::new([("proto", "styx"), ("auth", "infpk1")]));
        a.set("load", "5");
        assert_eq!(
            a,
            Attributes::new([("load", "5"), ("proto", "styx"), ("auth", "infpk1")])
        );
    }

    /// What Limbo's `Attributes.set` (appl/lib/registries.b) leaves: the replaced pair keeps its
    /// place and the pairs before it are reversed; the pairs after it are untouched.
    #[test]
    fn set_reorders_as_limbo_does() {
        let mut a = Attributes::new([("a", "1"), ("b", "2"), ("x", "old"), ("d", "4")]);
        a.set("x", "new");
        assert_eq!(
            a,
            Attributes::new([("b", "2"), ("a", "1"), ("x", "new"), ("d", "4")])
        );
        // The first pair replaced: nothing before it to reverse.
        a.set("b", "3");
        assert_eq!(
            a,
            Attributes::new([("b", "3"), ("a", "1"), ("x", "new"), ("d", "4")])
        );
        // The last: all three before it reversed.
        a.set("d", "5");
        assert_eq!(
            a,
            Attributes::new([("x", "new"), ("a", "1"), ("b", "3"), ("d", "5")])
        );
        // So a register after these sets writes the pairs in Limbo's order.
        assert_eq!(
            crate::wire::register_line("tcp!h!1", a.iter(), false),
            "tcp!h!1 x new a 1 b 3 d 5"
        );
    }

    #[test]
    fn display_quotes() {
        let a = Attributes::new([("description", "it's a test"), ("empty", ""), ("x", "*")]);
        assert_eq!(a.to_string(), "description 'it''s a test' empty '' x *");
    }
}
