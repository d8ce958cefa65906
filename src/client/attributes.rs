//! `Attributes`: a service description, a list of attribute/value pairs.

use compact_str::CompactString;
use std::fmt;

/// A set of attribute/value pairs, in the order registries(2) keeps them.
///
/// As in Limbo, [`Attributes::set`] puts a new attribute at the front and rebuilds the list around
/// a replaced one, and the pairs are written to the registry in list order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    // Short strings are held inline, not allocated: names and values are mostly a few bytes,
    // and a `find` over many services makes six strings per service (spec/packages.md §4).
    pairs: Vec<(CompactString, CompactString)>,
}

impl Attributes {
    /// Attributes holding `pairs` in the given order (Limbo's `Attributes.new`).
    pub fn new<A, V>(pairs: impl IntoIterator<Item = (A, V)>) -> Attributes
    where
        A: AsRef<str>,
        V: AsRef<str>,
    {
        Attributes {
            pairs: pairs
                .into_iter()
                .map(|(a, v)| (a.as_ref().into(), v.as_ref().into()))
                .collect(),
        }
    }

    /// The value of `attr`, if present (the first one, should a list hold it twice).
    pub fn get(&self, attr: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(a, _)| a == attr)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `attr` to `val` exactly as Limbo's `Attributes.set` does, since the order decides the
    /// bytes `register` writes: a new attribute goes to the front; an existing one (its first
    /// pair) takes the new value where it stands, and the pairs before it come out in reverse
    /// order, because Limbo rebuilds the list by prepending them one by one
    /// (`[a, b, X, d]` set `X` gives `[b, a, X', d]`).
    pub fn set(&mut self, attr: impl AsRef<str>, val: impl AsRef<str>) {
        let attr = attr.as_ref();
        let val = CompactString::from(val.as_ref());
        match self.pairs.iter().position(|(a, _)| a == attr) {
            Some(i) => {
                if let Some((_, v)) = self.pairs.get_mut(i) {
                    *v = val;
                }
                if let Some(before) = self.pairs.get_mut(..i) {
                    before.reverse();
                }
            }
            None => self.pairs.insert(0, (attr.into(), val)),
        }
    }

    /// The pairs as string slices, first to last.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(a, v)| (a.as_str(), v.as_str()))
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
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
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
