//! The attribute index behind `find` (spec/registry.md §4).
//!
//! Inferno's registry scans every service for every query. We keep, per attribute name, the set of
//! services that have it and, per value, the set of services with that exact value, so that a
//! query costs about the size of its smallest candidate set instead of the number of services.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A service's number (`idseq` in Inferno): its qid path is `id << 4 | 5`.
pub type EntryId = u64;

/// The services that hold one attribute name.
#[derive(Debug, Default)]
struct Posting {
    /// Every service that has the attribute, whatever its value (for `*`).
    any: HashSet<EntryId>,
    /// The services per exact value.
    by_value: HashMap<Arc<str>, HashSet<EntryId>>,
}

/// Attribute name -> value -> services, kept in step with every attribute change.
#[derive(Debug, Default)]
pub struct AttrIndex {
    postings: HashMap<Arc<str>, Posting>,
}

/// The shared copy of `key` held by `map`, or a new one.
fn shared<V>(map: &HashMap<Arc<str>, V>, key: &str) -> Arc<str> {
    match map.get_key_value(key) {
        Some((k, _)) => k.clone(),
        None => Arc::from(key),
    }
}

impl AttrIndex {
    /// Records that service `id` has `attr` = `val`, and returns the index's own copies of
    /// both strings: services keep those instead of copies of their own, so an attribute
    /// name or value many services share is stored once.
    pub fn insert(&mut self, id: EntryId, attr: &str, val: &str) -> (Arc<str>, Arc<str>) {
        let a = shared(&self.postings, attr);
        let p = self.postings.entry(a.clone()).or_default();
        p.any.insert(id);
        let v = shared(&p.by_value, val);
        p.by_value.entry(v.clone()).or_default().insert(id);
        (a, v)
    }

    /// Forgets that service `id` has `attr` = `val`.
    pub fn remove(&mut self, id: EntryId, attr: &str, val: &str) {
        let Some(p) = self.postings.get_mut(attr) else {
            return;
        };
        p.any.remove(&id);
        if let Some(set) = p.by_value.get_mut(val) {
            set.remove(&id);
            if set.is_empty() {
                p.by_value.remove(val);
            }
        }
        if p.any.is_empty() {
            self.postings.remove(attr);
        }
    }

    /// The candidates for one query pair: every service with `attr` when `val` is `*`, otherwise
    /// those with exactly that value. `None` when there are none.
    fn candidates(&self, attr: &str, val: &str) -> Option<&HashSet<EntryId>> {
        let p = self.postings.get(attr)?;
        if val == "*" {
            Some(&p.any)
        } else {
            p.by_value.get(val)
        }
    }

    /// The smallest candidate set over all pairs of a non-empty query: every match is in it.
    /// `None` when some pair has no candidate at all (or the query is empty).
    pub fn smallest_set(&self, query: &[(String, String)]) -> Option<&HashSet<EntryId>> {
        let mut best: Option<&HashSet<EntryId>> = None;
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
            .flat_map(|s| s.iter().copied())
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
