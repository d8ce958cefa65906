//! What a monitor reports between two looks at the registry, with a grace period after a
//! reconnection so that services which are being registered again are not reported as removed
//! and added.

use crate::client::{Change, Service};

/// The result of comparing the known services with a fresh `find`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// What to report, removals first, then additions and changes in `find` order.
    pub changes: Vec<Change>,
    /// The services to remember: the fresh list, plus, in grace, the missing ones held back.
    pub known: Vec<Service>,
    /// Whether some missing services were held back (a refresh is due when the grace ends).
    pub held_back: bool,
}

/// Compares `old` with `new` as [`Monitor`](crate::client::Monitor) does (the one diff,
/// attributes compared as a set). In `grace`, services missing from `new` are kept, unreported.
pub fn compare(old: &[Service], new: Vec<Service>, grace: bool) -> Outcome {
    let mut out = Outcome::default();
    let mut kept = Vec::new();
    for change in crate::client::diff(old, &new) {
        match change {
            Change::Removed(s) if grace => {
                kept.push(s);
                out.held_back = true;
            }
            c => out.changes.push(c),
        }
    }
    out.known = new;
    out.known.extend(kept);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Attributes;

    fn svc(name: &str, pairs: &[(&str, &str)]) -> Service {
        Service::new(name, Attributes::new(pairs.iter().copied()))
    }

    #[test]
    fn reports_each_kind() {
        let old = [
            svc("a", &[("x", "1"), ("y", "2")]),
            svc("b", &[]),
            svc("c", &[("y", "2")]),
        ];
        let new = vec![
            svc("c", &[("y", "3")]),
            svc("a", &[("y", "2"), ("x", "1")]),
            svc("d", &[]),
        ];
        let o = compare(&old, new.clone(), false);
        assert_eq!(
            o.changes,
            [
                Change::Removed(svc("b", &[])),
                Change::Changed(svc("c", &[("y", "3")])),
                Change::Added(svc("d", &[])),
            ]
        );
        assert_eq!(o.known, new);
        assert!(compare(&new, new.clone(), false).changes.is_empty());
    }

    #[test]
    fn grace_holds_back_removals() {
        let old = [svc("a", &[]), svc("b", &[])];
        let o = compare(&old, vec![svc("a", &[])], true);
        assert!(o.changes.is_empty());
        assert!(o.held_back);
        assert_eq!(o.known.len(), 2);
        // b comes back unchanged: nothing to report.
        let o2 = compare(&o.known, vec![svc("b", &[]), svc("a", &[])], true);
        assert!(o2.changes.is_empty() && !o2.held_back);
        // b never comes back: reported once the grace is over.
        let o3 = compare(&o.known, vec![svc("a", &[])], false);
        assert_eq!(o3.changes, [Change::Removed(svc("b", &[]))]);
    }
}
