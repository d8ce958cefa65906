//! The attribute index behind `find` (registry4.md §4).
//!
//! Inferno's registry scans every service for every query. We keep, per attribute name, the set of
//! services that have it and, per value, the set of services with that exact value, so that a
//! query costs about the size of its smallest candidate set instead of the number of services.

use std::collections::{HashMap, HashSet};

/// A service's number (`idseq` in Inferno): its qid path is `id << 4 | 5`.
pub type ServiceId = u64;

/// The services that hold one attribute name.
#[derive(Debug, Default)]
struct Posting {
    /// Every service that has the attribute, whatever its value (for `*`).
    any: HashSet<ServiceId>,
    /// The services per exact value.
    by_value: HashMap<String, HashSet<ServiceId>>,
}

/// Attribute name -> value -> services, kept in step with every attribute change.
#[derive(Debug, Default)]
pub struct AttrIndex {
    postings: HashMap<String, Posting>,
}

impl AttrIndex {
    /// Records that service `id` has `attr` = `val`.
    pub fn insert(&mut self, id: ServiceId, attr: &str, val: &str) {
        let p = self.postings.entry(attr.to_string()).or_default();
        p.any.insert(id);
        p.by_value.entry(val.to_string()).or_default().insert(id);
    }

    /// Forgets that service `id` has `attr` = `val`.
    pub fn remove(&mut self, id: ServiceId, attr: &str, val: &str) {
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
    fn candidates(&self, attr: &str, val: &str) -> Option<&HashSet<ServiceId>> {
        let p = self.postings.get(attr)?;
        if val == "*" {
            Some(&p.any)
        } else {
            p.by_value.get(val)
        }
    }

    /// The smallest candidate set over all pairs of a non-empty query: every match is in it.
    /// Returns an empty iterator when some pair has no candidate at all.
    pub fn smallest_candidates<'a>(
        &'a self,
        query: &[(String, String)],
    ) -> impl Iterator<Item = ServiceId> + 'a {
        let mut best: Option<&HashSet<ServiceId>> = None;
        for (a, v) in query {
            match self.candidates(a, v) {
                None => {
                    best = None;
                    break;
                }
                Some(set) if best.is_none_or(|b| set.len() < b.len()) => best = Some(set),
                Some(_) => {}
            }
        }
        best.into_iter().flat_map(|s| s.iter().copied())
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
