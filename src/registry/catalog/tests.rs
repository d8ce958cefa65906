//! Unit tests of the registry state (spec/registry.md §3–§5, spec/vectors/limbo-registries-9p.md).

use super::*;

/// Fid token `n` (not 0).
const fn fid(n: u64) -> FidRef {
    match FidRef::new(n) {
        Some(f) => f,
        None => panic!("fid 0"),
    }
}

const C1: FidRef = fid(40);
const C2: FidRef = fid(41);

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, v)| (a.to_string(), v.to_string()))
        .collect()
}

/// The registry of the captured run after steps 2 and 3.
fn captured() -> (Catalog, EntryId, EntryId) {
    let mut s = Catalog::new(100);
    let a = s.create("root", Some(C1), 100);
    s.write(
        a,
        "tcp!127.0.0.1!7001 proto styx description 'it''s a test' empty ''",
        101,
    )
    .unwrap();
    let b = s.create("root", Some(C2), 100);
    s.write(
        b,
        "tcp!127.0.0.1!7002 proto styx auth infpk1 persist 1",
        101,
    )
    .unwrap();
    (s, a, b)
}

#[test]
fn captured_index_and_finds() {
    let (s, a, b) = captured();
    assert_eq!((a, b), (0, 1));
    let line1 = "tcp!127.0.0.1!7001 empty '' description 'it''s a test' proto styx\n";
    let line2 = "tcp!127.0.0.1!7002 persist 1 auth infpk1 proto styx\n";
    assert_eq!(s.format_find(&[]), format!("{line1}{line2}"));
    assert_eq!(
        s.format_find(&q(&[("proto", "styx")])),
        format!("{line1}{line2}")
    );
    assert_eq!(s.format_find(&q(&[("auth", "*")])), line2);
    assert_eq!(s.format_find(&q(&[("nosuch", "x")])), "");
    assert_eq!(s.format_service(b), line2);
    assert_eq!(s.rootvers(), 2);
    assert_eq!(s.entry(b).unwrap().vers, 1);
}

#[test]
fn update_prepends_and_replace_reverses_prefix() {
    let (mut s, a, _) = captured();
    s.write(a, "load 5", 102).unwrap();
    assert_eq!(
        s.format_service(a),
        "tcp!127.0.0.1!7001 load 5 empty '' description 'it''s a test' proto styx\n"
    );
    // Inferno's Service.set rebuilds the list: the attributes before the replaced one reverse.
    s.write(a, "description new", 103).unwrap();
    assert_eq!(
        s.format_service(a),
        "tcp!127.0.0.1!7001 empty '' load 5 description new proto styx\n"
    );
    assert_eq!(s.entry(a).unwrap().vers, 3);
    assert_eq!(
        s.format_find(&q(&[("description", "new")])),
        s.format_service(a)
    );
    assert_eq!(s.format_find(&q(&[("description", "it's a test")])), "");
}

#[test]
fn name_errors() {
    let (mut s, _, _) = captured();
    for (data, err) in [
        ("", Diagnostic::BadSyntax),
        ("   \n", Diagnostic::BadSyntax),
        ("a/b", Diagnostic::BadChar),
        ("'a b'", Diagnostic::BadChar),
        ("'a\x7f'", Diagnostic::BadChar),
        ("new", Diagnostic::BadName),
        ("event x y", Diagnostic::BadName),
        ("find", Diagnostic::BadName),
        ("index", Diagnostic::BadName),
        ("''", Diagnostic::BadName),
        ("tcp!127.0.0.1!7001", Diagnostic::Duplicate),
    ] {
        let id = s.create("u", Some(fid(1)), 0);
        assert_eq!(s.write(id, data, 0), Err(err.clone()), "{data:?}");
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(
        Diagnostic::BadChar.to_string(),
        "bad character in service name"
    );
    assert_eq!(Diagnostic::Gone.to_string(), "buggy program!");
    let rv = s.rootvers();
    // A first write with odd pairs names the service anyway, without a change.
    let id = s.create("u", Some(fid(2)), 0);
    assert_eq!(s.write(id, "odd a", 0), Err(Diagnostic::OddPairs));
    assert_eq!(s.entry(id).unwrap().name().map(|n| &**n), Some("odd"));
    assert_eq!(s.rootvers(), rv);
    assert_eq!(s.write(id, "", 0), Err(Diagnostic::BadSyntax));
    assert_eq!(s.write(id, "a b c", 0), Err(Diagnostic::OddPairs));
    s.write(id, "a b", 0).unwrap();
    assert_eq!(s.rootvers(), rv + 1);
}

#[test]
fn persist_rule() {
    for (v, keep) in [
        ("1", true),
        ("0", false),
        ("yes", false),
        (" 12x", true),
        ("-3", true),
        ("00", false),
        ("99999999999999999999", true),
        ("", false),
        ("+0", false),
    ] {
        let mut s = Catalog::new(0);
        let id = s.create("u", Some(C1), 0);
        s.write(id, &format!("svc persist {}", wire::quote(v)), 0)
            .unwrap();
        assert_eq!(!s.release(id, C1, false), keep, "persist {v:?}");
    }
}

#[test]
fn release_only_by_creator_and_orclose() {
    let (mut s, a, b) = captured();
    assert!(!s.release(a, C2, false));
    assert!(!s.release(b, C2, false), "persist 1 keeps it");
    assert!(s.entry(b).is_some());
    let rv = s.rootvers();
    assert!(s.release(b, C2, true), "ORCLOSE removes it anyway");
    assert_eq!(s.rootvers(), rv + 1);
    assert!(s.release(a, C1, false));
    assert!(s.is_empty());
    // An anonymous service goes without a visible change.
    let id = s.create("u", Some(C1), 0);
    assert!(s.release(id, C1, false));
    assert_eq!(s.rootvers(), rv + 2);
}

#[test]
fn remove_by_owner_only() {
    let (mut s, a, b) = captured();
    assert_eq!(s.remove(b, "mallory"), Err(Diagnostic::PermissionDenied));
    assert_eq!(s.remove(b, "root"), Ok(()));
    assert_eq!(s.remove(b, "root"), Err(Diagnostic::NotFound));
    assert_eq!(s.write(b, "x y", 0), Err(Diagnostic::Gone));
    assert_eq!(s.lookup("tcp!127.0.0.1!7002"), None);
    assert_eq!(s.lookup("tcp!127.0.0.1!7001"), Some(a));
    assert_eq!(s.rootvers(), 3);
}

#[test]
fn listing_order_follows_inferno_swap_remove() {
    let mut s = Catalog::new(0);
    let ids: Vec<_> = (0..4u32)
        .map(|i| {
            let f = fid(u64::from(i) + 1);
            let id = s.create("u", Some(f), 0);
            s.write(id, &format!("s{i} k v"), 0).unwrap();
            id
        })
        .collect();
    s.remove(ids[1], "u").unwrap();
    let names: Vec<_> = s.named().filter_map(|x| x.name().map(|n| &**n)).collect();
    assert_eq!(names, ["s0", "s3", "s2"]);
    assert_eq!(s.format_find(&q(&[("k", "v")])), "s0 k v\ns3 k v\ns2 k v\n");
}

#[test]
fn static_services_and_lookup() {
    let mut s = Catalog::new(0);
    let id = s
        .add_static(
            "net!click!1234",
            q(&[("description", "snap"), ("auth", "none")]),
            0,
        )
        .unwrap();
    assert_eq!(s.add_static("new", vec![], 0), Err(Diagnostic::BadName));
    let svc = s.entry(id).unwrap();
    assert_eq!(&*svc.owner, REGISTRY_USER);
    assert!(svc.creator.is_none());
    assert_eq!(
        s.format_service(id),
        "net!click!1234 auth none description snap\n"
    );
    assert_eq!(s.rootvers(), 0);
    // A walk to "" finds the first anonymous service, as in Inferno.
    assert_eq!(s.lookup(""), None);
    let anon = s.create("u", Some(C1), 0);
    assert_eq!(s.lookup(""), Some(anon));
}

#[test]
fn find_uses_the_index() {
    let mut s = Catalog::new(0);
    for i in 0..100_000u32 {
        let id = s.create("u", Some(fid(u64::from(i) + 1)), 0);
        let rare = if i % 10_000 == 0 { " rare yes" } else { "" };
        s.write(id, &format!("tcp!h!{i} proto styx n {i}{rare}"), 0)
            .unwrap();
    }
    let (found, stats) = s.find(&q(&[("proto", "styx"), ("n", "4242")]));
    assert_eq!(found.len(), 1);
    assert_eq!(stats.examined, 1);
    let (found, stats) = s.find(&q(&[("proto", "*"), ("rare", "*")]));
    assert_eq!(found.len(), 10);
    assert_eq!(stats.examined, 10);
    let (found, stats) = s.find(&q(&[("nosuch", "*"), ("proto", "styx")]));
    assert!(found.is_empty());
    assert_eq!(stats.examined, 0);
    // Duplicate query attributes must both hold.
    let (found, _) = s.find(&q(&[("n", "1"), ("n", "2")]));
    assert!(found.is_empty());
}

#[tokio::test]
async fn watchers_see_changes() {
    let (mut s, a, _) = captured();
    let mut rx = s.subscribe();
    let seen = *rx.borrow_and_update();
    assert_eq!(seen, 2);
    s.write(a, "x 1", 0).unwrap();
    s.write(a, "x 2", 0).unwrap();
    let v = *rx.wait_for(|v| *v != seen).await.unwrap();
    assert_eq!(v, 4, "coalesced");
}

/// Inferno's find, literally: every named service in listing order, filtered one by one.
fn naive_find(s: &Catalog, query: &[(String, String)]) -> Vec<EntryId> {
    s.named()
        .filter(|svc| matches(svc, query))
        .map(|svc| svc.id)
        .collect()
}

proptest::proptest! {
    /// Random registrations, updates, clunks and removals: the indexed find always agrees with
    /// the scan, in content and order.
    #[test]
    fn indexed_find_equals_scan(ops in proptest::collection::vec((0u8..4, 0u8..6, 0u8..3, 0u8..3), 1..60),
                                qa in 0u8..3, qv in 0u8..4) {
        let mut s = Catalog::new(0);
        let mut live: Vec<(EntryId, FidRef)> = Vec::new();
        for (i, (op, pick, a, v)) in ops.into_iter().enumerate() {
            let attr = format!("a{a}");
            let val = format!("v{v}");
            match op {
                0 => {
                    let f = fid(i as u64 + 1);
                    let id = s.create("u", Some(f), 0);
                    let _ = s.write(id, &format!("s{i} {attr} {val}"), 0);
                    live.push((id, f));
                }
                1 if !live.is_empty() => {
                    let (id, _) = live[usize::from(pick) % live.len()];
                    let _ = s.write(id, &format!("{attr} {val}"), 0);
                }
                2 if !live.is_empty() => {
                    let (id, f) = live.remove(usize::from(pick) % live.len());
                    s.release(id, f, false);
                }
                3 if !live.is_empty() => {
                    let (id, _) = live.remove(usize::from(pick) % live.len());
                    let _ = s.remove(id, "u");
                }
                _ => {}
            }
        }
        let value = if qv == 3 { "*".to_string() } else { format!("v{qv}") };
        for query in [q(&[(&format!("a{qa}"), &value)]), q(&[("a0", "*"), (&format!("a{qa}"), &value)]), vec![]] {
            let got: Vec<EntryId> = s.find(&query).0.iter().map(|svc| svc.id).collect();
            proptest::prop_assert_eq!(got, naive_find(&s, &query));
        }
    }
}

/// Scale check that prints figures (no timing assertion): `find` over many services examines
/// only what the index points at. `REGISTRY_SCALE_SERVICES` (default 100000) sets the size.
#[test]
fn find_over_many_services() {
    let n = std::env::var("REGISTRY_SCALE_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000usize);
    let mut s = Catalog::new(0);
    let t0 = std::time::Instant::now();
    for i in 0..n {
        let id = s.create("u", Some(fid(i as u64 + 1)), 0);
        let extra = if i % 1000 == 0 { " rare yes" } else { "" };
        s.write(id, &format!("tcp!h!{i} proto styx n {i}{extra}"), 0)
            .unwrap();
    }
    let built = t0.elapsed();
    let q = |p: &[(&str, &str)]| {
        p.iter()
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let query = q(&[("proto", "styx"), ("n", "4242")]);
    let t1 = std::time::Instant::now();
    let (found, stats) = s.find(&query);
    let selective = t1.elapsed();
    assert_eq!((found.len(), stats.examined), (1, 1));
    let query = q(&[("rare", "*")]);
    let (found, stats) = s.find(&query);
    assert_eq!(found.len(), stats.examined);
    let t2 = std::time::Instant::now();
    let all = s.format_find(&[]);
    let full = t2.elapsed();
    println!(
        "registry scale: {n} services registered in {built:?}; selective find {selective:?} (1 examined); \
         full index {} bytes in {full:?}",
        all.len()
    );
}

/// An etcd record of service `name` with the attributes `a b`.
fn rec(name: &str) -> crate::registry::record::Record {
    crate::registry::record::Record {
        owner: "u".into(),
        holder: 9,
        fid: 1,
        vers: 1,
        mtime: 1,
        name: name.into(),
        attrs: vec![("a".into(), "b".into())],
    }
}

/// Stored at etcd revision `rev`, created then too.
fn at(rev: i64) -> Stored {
    Stored {
        create: rev,
        modrev: rev,
    }
}

/// Commits `plan` the way etcd's echo would: a record applied at the next revision.
fn commit(r: &mut Catalog, plan: Plan, rev: &mut i64) -> Result<(), Diagnostic> {
    *rev += 1;
    let create = plan.stored.map_or(*rev, |s| s.create);
    r.apply_put(
        plan.record,
        Stored {
            create,
            modrev: *rev,
        },
        100,
    );
    plan.then.map_or(Ok(()), Err)
}

proptest::proptest! {
    /// A replica that plans writes and applies them as records ends where the in-memory catalog's
    /// own writes end: the same texts, attribute order, versions, counter and diagnostics.
    #[test]
    fn planned_and_applied_writes_equal_direct_writes(
        writes in proptest::collection::vec((0u8..2, "[abc]( [abc])?( [abc])?( [abc])?"), 1..30)
    ) {
        let mut direct = Catalog::new(100);
        let mut replica = Catalog::new(100);
        replica.make_replica(7);
        let ids = [
            (direct.create("u", Some(C1), 100), replica.create("u", Some(C1), 100)),
            (direct.create("u", Some(C2), 100), replica.create("u", Some(C2), 100)),
        ];
        let mut rev = 0;
        for (who, text) in writes {
            let (d, r) = ids[usize::from(who)];
            let want = direct.write(d, &text, 200);
            let got = replica.plan_write(r, &text, 200).and_then(|p| commit(&mut replica, p, &mut rev));
            proptest::prop_assert_eq!(&got, &want, "{}", text);
            proptest::prop_assert_eq!(replica.format_find(&[]), direct.format_find(&[]));
            proptest::prop_assert_eq!(replica.find_answer(&[]), direct.format_find(&[]));
            proptest::prop_assert_eq!(replica.rootvers(), direct.rootvers());
        }
        for (d, r) in ids {
            proptest::prop_assert_eq!(replica.entry(r).map(|e| e.vers), direct.entry(d).map(|e| e.vers));
        }
    }
}

#[test]
fn a_snapshot_reload_wakes_event_readers_once() {
    let mut r = Catalog::new(100);
    r.make_replica(7);
    r.apply_put(rec("x"), at(1), 100);
    r.apply_put(rec("y"), at(2), 100);
    assert_eq!(r.rootvers(), 2);
    let events = r.subscribe();
    r.apply_snapshot(
        vec![(rec("y"), at(2)), (rec("z"), at(5)), (rec("w"), at(6))],
        7,
        100,
    );
    assert_eq!(r.rootvers(), 3, "one change for the whole reload");
    assert_eq!(*events.borrow(), 3);
    assert_eq!(r.format_find(&[]), "y a b\nz a b\nw a b\n");
    r.apply_snapshot(
        vec![(rec("y"), at(2)), (rec("z"), at(5)), (rec("w"), at(6))],
        7,
        100,
    );
    assert_eq!(r.rootvers(), 3, "nothing changed, nobody woken");
}

#[test]
fn a_held_registration_deleted_elsewhere_is_kept_for_the_lease_and_comes_back() {
    let mut r = Catalog::new(100);
    r.make_replica(7);
    let id = r.create("u", Some(C1), 100);
    let plan = r.plan_write(id, "tcp!h!1 a b", 100).unwrap();
    let mut rev = 0;
    commit(&mut r, plan, &mut rev).unwrap();
    assert_eq!(r.held().len(), 1);
    r.apply_delete("tcp!h!1", 11);
    assert_eq!(r.format_find(&[]), "");
    let (_, rec) = r.held().pop().unwrap();
    assert_eq!(rec.name, "tcp!h!1");
    r.apply_put(
        rec,
        Stored {
            create: 9,
            modrev: 9,
        },
        100,
    );
    assert_eq!(r.format_find(&[]), "tcp!h!1 a b\n");
    assert_eq!(
        r.lookup("tcp!h!1"),
        Some(id),
        "back to the fid that opened it"
    );
    assert_eq!(
        r.plan_release(id, C1, false),
        Release::Delete {
            id,
            name: "tcp!h!1".into(),
            create: 9
        }
    );
    r.mark_taken(id);
    assert_eq!(r.plan_write(id, "c d", 100).unwrap_err(), Diagnostic::Taken);
}

#[test]
fn deletions_take_only_the_incarnation_they_name_and_dropped_services_stay_dropped() {
    let mut r = Catalog::new(100);
    r.make_replica(7);
    let id = r.create("u", Some(C1), 100);
    let plan = r.plan_write(id, "tcp!h!1 a b", 100).unwrap();
    let mut rev = 9;
    commit(&mut r, plan, &mut rev).unwrap();
    let (_, mut rec) = r.held().pop().unwrap();
    // A deletion older than what is listed (a lagging watch) leaves it.
    assert!(!r.apply_delete("tcp!h!1", 5));
    assert_eq!(r.format_find(&[]), "tcp!h!1 a b\n");
    // Dropped while etcd is away: a replayed put of that version does not bring it back.
    r.drop_now("tcp!h!1");
    rec.fid = 99;
    r.apply_put(
        rec.clone(),
        Stored {
            create: 10,
            modrev: 10,
        },
        100,
    );
    assert_eq!(r.format_find(&[]), "");
    r.set_applied(12);
    r.apply_put(
        rec,
        Stored {
            create: 13,
            modrev: 13,
        },
        100,
    );
    assert_eq!(
        r.format_find(&[]),
        "tcp!h!1 a b\n",
        "a later creation is applied"
    );
    assert_eq!(
        r.stray("tcp!h!1"),
        Some(13),
        "ours, non-persistent, no fid: to delete"
    );
}

proptest::proptest! {
    /// A kept answer is never stale: after any sequence of creates, writes, releases and
    /// removals, the shared answer of each query is what rendering it afresh gives.
    #[test]
    fn kept_answers_equal_fresh_ones(
        ops in proptest::collection::vec((0u8..4, 0usize..4, "[abc]( [abc])?( [abc])?( [abc])?"), 1..40)
    ) {
        let mut s = Catalog::new(100);
        let queries = [q(&[]), q(&[("a", "b")]), q(&[("b", "*")]), q(&[("c", "a"), ("a", "*")])];
        let mut ids: Vec<(EntryId, FidRef)> = Vec::new();
        for (i, (op, pick, text)) in ops.into_iter().enumerate() {
            match op {
                0 => {
                    let fid = fid(100 + i as u64);
                    ids.push((s.create("u", Some(fid), 100), fid));
                }
                1 => if let Some(&(id, _)) = ids.get(pick % ids.len().max(1)) {
                    let _ = s.write(id, &text, 200);
                },
                2 => if let Some(&(id, fid)) = ids.get(pick % ids.len().max(1)) {
                    s.release(id, fid, false);
                },
                _ => if let Some(&(id, _)) = ids.get(pick % ids.len().max(1)) {
                    let _ = s.remove(id, "u");
                },
            }
            for query in &queries {
                let fresh = s.format_find(query);
                proptest::prop_assert_eq!(&s.find_answer(query)[..], fresh.as_bytes());
            }
        }
    }
}

/// A change has the same feed revision on every front-end, whatever each saw before: here one
/// replica applied a lease's expiry (two deletions at one etcd revision) one by one, the other
/// started from a snapshot taken after it.
#[test]
fn feed_revisions_agree_across_replicas_after_a_multi_change_revision() {
    let mut a = Catalog::new(100);
    a.make_replica(7);
    a.apply_put(rec("x"), at(1), 100);
    a.apply_put(rec("y"), at(2), 100);
    a.apply_delete("x", 3);
    a.apply_delete("y", 3);
    assert_eq!(
        a.feed_revision(),
        3_000_001,
        "the second change of etcd revision 3"
    );
    a.apply_put(rec("z"), at(4), 100);
    let mut b = Catalog::new(100);
    b.make_replica(8);
    b.apply_snapshot(vec![(rec("z"), at(4))], 4, 100);
    a.apply_put(rec("w"), at(5), 100);
    b.apply_put(rec("w"), at(5), 100);
    assert_eq!(a.feed_revision(), 5_000_000);
    assert_eq!(b.feed_revision(), a.feed_revision());
}
