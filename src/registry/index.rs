//! The attribute index behind `find` (spec/registry.md §4).
//!
//! Inferno's registry scans every service for every query. We keep, per attribute name and value,
//! the set of services with that exact value (and per name how many have it), so that a query
//! costs about the size of its smallest candidate set instead of the number of services.

use arcstr::ArcStr;
use std::collections::{HashMap, HashSet};

/// A service's number (`idseq` in Inferno): its qid path is `id << 4 | 5`.
pub type EntryId = u64;

/// The services that hold one attribute name.
#[derive(Debug, Default)]
pub struct Posting {
    /// How many services have the attribute, whatever its value. A `*` query takes its
    /// candidates from every value's set: a set of its own for `*` would hold each service
    /// again, about 12 bytes per service and attribute.
    any: usize,
    /// The services per exact value.
    by_value: HashMap<ArcStr, HashSet<EntryId>>,
}

/// Attribute name -> value -> services, kept in step with every attribute change.
#[derive(Debug, Default)]
pub struct AttrIndex {
    postings: HashMap<ArcStr, Posting>,
}

/// The candidates of one query pair: the services with one exact value, or (`*`) with any.
#[derive(Debug, Clone, Copy)]
pub enum Candidates<'a> {
    /// The services whose attribute has one value.
    Value(&'a HashSet<EntryId>),
    /// Every service that has the attribute: the union of its values' sets, which are disjoint.
    Any(&'a Posting),
}

impl<'a> Candidates<'a> {
    /// How many services there are.
    pub fn len(self) -> usize {
        match self {
            Candidates::Value(set) => set.len(),
            Candidates::Any(p) => p.any,
        }
    }

    /// The services, each once, in no particular order.
    pub fn iter(self) -> impl Iterator<Item = EntryId> + 'a {
        let (one, all) = match self {
            Candidates::Value(set) => (Some(set), None),
            Candidates::Any(p) => (None, Some(p.by_value.values())),
        };
        one.into_iter()
            .chain(all.into_iter().flatten())
            .flat_map(|set| set.iter().copied())
    }
}

/// The shared copy of `key` held by `map`, or a new one.
fn shared<V>(map: &HashMap<ArcStr, V>, key: &str) -> ArcStr {
    match map.get_key_value(key) {
        Some((k, _)) => k.clone(),
        None => ArcStr::from(key),
    }
}

impl AttrIndex {
    /// Records that service `id` has `attr` = `val`, and returns the index's own copies of
    /// both strings: services keep those instead of copies of their own, so an attribute
    /// name or value many services share is stored once. A service has each attribute once.
    pub fn insert(&mut self, id: EntryId, attr: &str, val: &str) -> (ArcStr, ArcStr) {
        let a = shared(&self.postings, attr);
        let p = self.postings.entry(a.clone()).or_default();
        let v = shared(&p.by_value, val);
        if p.by_value.entry(v.clone()).or_default().insert(id) {
            p.any += 1;
        }
        (a, v)
    }

    /// Forgets that service `id` has `attr` = `val`.
    pub fn remove(&mut self, id: EntryId, attr: &str, val: &str) {
        let Some(p) = self.postings.get_mut(attr) else {
            return;
        };
        if let Some(set) = p.by_value.get_mut(val)
            && set.remove(&id)
        {
            p.any -= 1;
            if set.is_empty() {
                p.by_value.remove(val);
            }
        }
        if p.any == 0 {
            self.postings.remove(attr);
        }
    }

    /// The candidates for one query pair: every service with `attr` when `val` is `*`, otherwise
    /// those with exactly that value. `None` when there are none.
    fn candidates(&self, attr: &str, val: &str) -> Option<Candidates<'_>> {
        let p = self.postings.get(attr)?;
        if val == "*" {
            Some(Candidates::Any(p))
        } else {
            p.by_value.get(val).map(Candidates::Value)
        }
    }

    /// The smallest candidate set over all pairs of a non-empty query: every match is in it.
    /// `None` when some pair has no candidate at all (or the query is empty).
    pub fn smallest_set(&self, query: &[(String, String)]) -> Option<Candidates<'_>> {
        let mut best: Option<Candidates<'_>> = None;
        for (a, v) in query {
            let set = self.candidates(a, v)?;
            if best.is_none_or(|b| set.len() < b.len()) {
                best = Some(set);
            }
        }
        best
    }

    /// The members of [`AttrIndex::smallest_set`], none when it is `None`.
    #[cfg(test)]
    pub fn smallest_candidates<'a>(
        &'a self,
        query: &[(String, String)],
    ) -> impl Iterator<Item = EntryId> + 'a {
        self.smallest_set(query)
            .into_iter()
            .flat_map(Candidates::iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn picks_the_smallest_set() {
        let mut ix = AttrIndex::default();
        for id in 0..100 {
            ix.insert(id, "proto", "styx");
        }
        ix.insert(7, "auth", "infpk1");
        let mut c: Vec<_> = ix
            .smallest_candidates(&q(&[("proto", "styx"), ("auth", "*")]))
            .collect();
        c.sort();
        assert_eq!(c, [7]);
        assert_eq!(ix.smallest_candidates(&q(&[("nosuch", "*")])).count(), 0);
        assert_eq!(
            ix.smallest_candidates(&q(&[("proto", "x"), ("auth", "*")]))
                .count(),
            0
        );
    }

    #[test]
    fn remove_cleans_up() {
        let mut ix = AttrIndex::default();
        ix.insert(1, "a", "x");
        ix.remove(1, "a", "x");
        assert!(ix.postings.is_empty());
        ix.remove(1, "a", "x");
    }
}
