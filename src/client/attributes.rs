//! `Attributes`: a service description, a list of attribute/value pairs.

use std::fmt;

/// A set of attribute/value pairs, in the order registries(2) keeps them.
///
/// As in Limbo, [`Attributes::set`] changes an existing attribute in place and puts a new one at the
/// front, and the pairs are written to the registry in list order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The pairs, first to last.
    pub attrs: Vec<(String, String)>,
}

impl Attributes {
    /// Attributes holding `pairs` in the given order (Limbo's `Attributes.new`).
    pub fn new<A, V>(pairs: impl IntoIterator<Item = (A, V)>) -> Attributes
    where
        A: Into<String>,
        V: Into<String>,
    {
        Attributes {
            attrs: pairs
                .into_iter()
                .map(|(a, v)| (a.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `attr`, if present (the first one, should a list hold it twice).
    pub fn get(&self, attr: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| a == attr)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `attr` to `val`: in place when present, otherwise as a new pair at the front.
    pub fn set(&mut self, attr: impl Into<String>, val: impl Into<String>) {
        let attr = attr.into();
        let val = val.into();
        match self.attrs.iter_mut().find(|(a, _)| *a == attr) {
            Some((_, v)) => *v = val,
            None => self.attrs.insert(0, (attr, val)),
        }
    }

    /// The pairs as string slices, first to last.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(a, v)| (a.as_str(), v.as_str()))
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }
}

impl<A: Into<String>, V: Into<String>> FromIterator<(A, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (A, V)>>(iter: I) -> Self {
        Attributes::new(iter)
    }
}

/// Formats as the registry writes pairs: `attr val ...`, each word `%q`-quoted.
impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::format_pairs(self.iter()))
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

    #[test]
    fn display_quotes() {
        let a = Attributes::new([("description", "it's a test"), ("empty", ""), ("x", "*")]);
        assert_eq!(a.to_string(), "description 'it''s a test' empty '' x *");
    }
}
