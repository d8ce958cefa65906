//! The registry(4) semantics suite at the raw file level (spec/registry.md §2–§6), shared by
//! the in-memory server's tests (`registry_e2e.rs`) and the etcd-backed one's
//! (`etcd_semantics.rs`). A test binary defines `start()` (a fresh, empty registry: a
//! `RunningServer`), imports this module's helpers (`connect` among them), and invokes
//! `registry_semantics!()`.
#![allow(dead_code)]

use registries::registry::RunningServer;
use registries::styx::{Client, Fid, ORDWR, OREAD};
use std::time::Duration;

/// A 9P connection to `server`, attached as `user`.
pub async fn connect(server: &RunningServer, user: &str) -> (Client, Fid) {
    let addr = server.local_addrs()[0].socket_addr_string().unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client = Client::connect(stream).await.unwrap();
    let root = client.attach(user, "").await.unwrap();
    (client, root)
}

/// How long a test waits for an answer that must come.
pub const T: Duration = Duration::from_secs(10);

pub async fn open(root: &Fid, name: &str, mode: u8) -> Fid {
    let mut f = root.walk(&[name]).await.unwrap();
    f.open(mode).await.unwrap();
    f
}

pub async fn read_text(f: &Fid) -> String {
    String::from_utf8(f.read_all().await.unwrap()).unwrap()
}

pub async fn index(root: &Fid) -> String {
    let f = open(root, "index", OREAD).await;
    let s = read_text(&f).await;
    f.clunk().await.unwrap();
    s
}

pub async fn find(root: &Fid, query: &str) -> String {
    let f = open(root, "find", ORDWR).await;
    f.write(0, query.as_bytes()).await.unwrap();
    let s = read_text(&f).await;
    f.clunk().await.unwrap();
    s
}

pub fn remote(e: registries::styx::Error) -> String {
    match e {
        registries::styx::Error::Remote(s) => s,
        other => panic!("not an Rerror: {other:?}"),
    }
}

/// The tests themselves, expanded where `start` and `connect` are defined.
macro_rules! registry_semantics {
    () => {
#[tokio::test]
async fn two_opens_of_new_on_one_connection() {
    let server = start().await;
    let (_c, root) = connect(&server, "alice").await;
    let a = open(&root, "new", OWRITE).await;
    let b = open(&root, "new", OWRITE).await;
    assert_eq!(a.qid().path, 0x5);
    assert_eq!(b.qid().path, 0x15);
    a.write(0, b"tcp!h!1 proto styx").await.unwrap();
    b.write(0, b"tcp!h!2 proto styx persist 1").await.unwrap();
    assert_eq!(
        index(&root).await,
        "tcp!h!1 proto styx\ntcp!h!2 persist 1 proto styx\n"
    );
    // Updates ignore the offset and prepend new attributes.
    a.write(18, b"load 5").await.unwrap();
    assert_eq!(find(&root, "load 5").await, "tcp!h!1 load 5 proto styx\n");
    let st = root.walk(&["tcp!h!1"]).await.unwrap().stat().await.unwrap();
    assert_eq!((st.qid.version, st.qid.path, st.mode), (2, 0x5, 0o644));
    assert_eq!(
        (st.uid.as_str(), st.gid.as_str(), st.name.as_str()),
        ("alice", "alice", "tcp!h!1")
    );
    a.clunk().await.unwrap();
    b.clunk().await.unwrap();
    assert_eq!(index(&root).await, "tcp!h!2 persist 1 proto styx\n");
    server.shutdown().await;
}

#[tokio::test]
async fn find_filters_are_per_fid() {
    let server = start().await;
    let (_c, root) = connect(&server, "alice").await;
    let r1 = open(&root, "new", OWRITE).await;
    r1.write(0, b"tcp!h!1 proto styx auth none").await.unwrap();
    let r2 = open(&root, "new", OWRITE).await;
    r2.write(0, b"tcp!h!2 proto styx auth infpk1")
        .await
        .unwrap();
    let f1 = open(&root, "find", ORDWR).await;
    let f2 = open(&root, "find", ORDWR).await;
    f1.write(0, b"auth none").await.unwrap();
    f2.write(0, b"auth * proto styx").await.unwrap();
    assert_eq!(read_text(&f1).await, "tcp!h!1 auth none proto styx\n");
    assert_eq!(read_text(&f2).await.lines().count(), 2);
    // An empty write clears the filter; an odd one is refused and keeps it.
    assert_eq!(
        remote(f1.write(0, b"auth").await.unwrap_err()),
        "odd attribute/value pairs"
    );
    assert_eq!(read_text(&f1).await.lines().count(), 1);
    f1.write(0, b"").await.unwrap();
    assert_eq!(read_text(&f1).await.lines().count(), 2);
    // No prefixes, exact bytes; `*` needs the attribute.
    assert_eq!(find(&root, "auth inf").await, "");
    assert_eq!(find(&root, "nosuch *").await, "");
    // The text is captured at the offset-0 read and kept for later offsets.
    let first = f2.read(0, 10).await.unwrap();
    r1.clunk().await.unwrap();
    let rest = f2.read(10, 8192).await.unwrap();
    assert_eq!(
        format!(
            "{}{}",
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&rest)
        )
        .lines()
        .count(),
        2
    );
    server.shutdown().await;
}

#[tokio::test]
async fn event_reports_changes_and_flush_cancels() {
    let server = start().await;
    let (_c, root) = connect(&server, "alice").await;
    let ev = open(&root, "event", OREAD).await;
    // Nothing changed since open: the read is held. Dropping it sends Tflush.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), ev.read(0, 8192))
            .await
            .is_err()
    );
    let r = open(&root, "new", OWRITE).await;
    r.write(0, b"tcp!h!1 a b").await.unwrap();
    r.write(0, b"c d").await.unwrap();
    // Two changes, one (coalesced) report, at once.
    let got = tokio::time::timeout(T, ev.read(0, 8192))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got[..], b"00000002\n");
    // Held again until the next change, here the service going away with its fid.
    let pending = tokio::spawn(async move {
        let data = ev.read(0, 8192).await.unwrap();
        (ev, data)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.clunk().await.unwrap();
    let (ev, data) = tokio::time::timeout(T, pending).await.unwrap().unwrap();
    assert_eq!(&data[..], b"00000003\n");
    // A short read gets a prefix of the line.
    let r = open(&root, "new", OWRITE).await;
    r.write(0, b"tcp!h!2").await.unwrap();
    assert_eq!(
        &tokio::time::timeout(T, ev.read(0, 4))
            .await
            .unwrap()
            .unwrap()[..],
        b"0000"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn owners_and_permission_denied() {
    let server = start().await;
    let (_ca, alice) = connect(&server, "alice").await;
    let (_cb, bob) = connect(&server, "bob").await;
    let r = open(&alice, "new", OWRITE).await;
    r.write(0, b"tcp!h!1 proto styx").await.unwrap();
    // Others may read a service file but not write or remove it.
    let f = open(&bob, "tcp!h!1", OREAD).await;
    assert_eq!(read_text(&f).await, "tcp!h!1 proto styx\n");
    let mut w = bob.walk(&["tcp!h!1"]).await.unwrap();
    assert_eq!(
        remote(w.open(OWRITE).await.unwrap_err()),
        "permission denied"
    );
    let w = bob.walk(&["tcp!h!1"]).await.unwrap();
    assert_eq!(remote(w.remove().await.unwrap_err()), "permission denied");
    // The owner writes through the service file and removes it.
    let w = open(&alice, "tcp!h!1", OWRITE).await;
    w.write(0, b"load 1").await.unwrap();
    assert_eq!(read_text(&f).await, "tcp!h!1 load 1 proto styx\n");
    alice
        .walk(&["tcp!h!1"])
        .await
        .unwrap()
        .remove()
        .await
        .unwrap();
    assert_eq!(index(&bob).await, "");
    assert_eq!(
        remote(w.write(0, b"x y").await.unwrap_err()),
        "buggy program!"
    );
    assert_eq!(
        remote(r.write(0, b"x y").await.unwrap_err()),
        "buggy program!"
    );
    assert_eq!(read_text(&f).await, "");
    // Control files cannot be removed or written.
    let idx = alice.walk(&["index"]).await.unwrap();
    assert_eq!(remote(idx.remove().await.unwrap_err()), "permission denied");
    let mut idx = alice.walk(&["index"]).await.unwrap();
    assert_eq!(
        remote(idx.open(OWRITE).await.unwrap_err()),
        "permission denied"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn registration_errors() {
    let server = start().await;
    let (_c, root) = connect(&server, "alice").await;
    let taken = open(&root, "new", OWRITE).await;
    taken.write(0, b"tcp!h!1").await.unwrap();
    for (data, err) in [
        ("", "bad syntax"),
        ("a/b", "bad character in service name"),
        ("'a b'", "bad character in service name"),
        ("index", "bad service name"),
        ("''", "bad service name"),
        ("tcp!h!1", "duplicate service name"),
    ] {
        let f = open(&root, "new", OWRITE).await;
        assert_eq!(
            remote(f.write(0, data.as_bytes()).await.unwrap_err()),
            err,
            "{data:?}"
        );
        f.clunk().await.unwrap();
    }
    let f = open(&root, "new", OWRITE).await;
    assert_eq!(
        remote(f.write(0, b"tcp!h!2 odd").await.unwrap_err()),
        "odd attribute/value pairs"
    );
    assert_eq!(
        remote(root.walk(&["nosuch"]).await.unwrap_err()),
        "file does not exist"
    );
    // A walk that stops after its first element is a short Rwalk, not an error.
    let short = root.walk(&["index", "x"]).await.unwrap_err();
    assert_eq!(short, registries::styx::Error::NotFound("x".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn persist_and_orclose() {
    let server = start().await;
    let (_c, root) = connect(&server, "alice").await;
    for (line, stays) in [
        ("tcp!h!1 persist yes", false),
        ("tcp!h!2 persist 1", true),
        ("tcp!h!3 persist 0", false),
        ("tcp!h!4 persist 12abc", true),
    ] {
        let f = open(&root, "new", OWRITE).await;
        f.write(0, line.as_bytes()).await.unwrap();
        f.clunk().await.unwrap();
        let name = line.split(' ').next().unwrap();
        assert_eq!(index(&root).await.contains(name), stays, "{line}");
    }
    // ORCLOSE removes even a persistent service.
    let f = open(&root, "new", OWRITE | ORCLOSE).await;
    f.write(0, b"tcp!h!5 persist 1").await.unwrap();
    assert!(index(&root).await.contains("tcp!h!5"));
    f.clunk().await.unwrap();
    assert!(!index(&root).await.contains("tcp!h!5"));
    // Another fid opened ORCLOSE on the service file does not remove it (Inferno).
    let f = open(&root, "tcp!h!2", OREAD | ORCLOSE).await;
    f.clunk().await.unwrap();
    assert!(index(&root).await.contains("tcp!h!2"));
    server.shutdown().await;
}

#[tokio::test]
async fn vanishing_connection_unregisters_and_wakes_watchers() {
    let server = start().await;
    let (_w, watcher) = connect(&server, "bob").await;
    let ev = open(&watcher, "event", OREAD).await;
    let (client, root) = connect(&server, "alice").await;
    let a = open(&root, "new", OWRITE).await;
    a.write(0, b"tcp!h!1 proto styx").await.unwrap();
    let p = open(&root, "new", OWRITE).await;
    p.write(0, b"tcp!h!2 persist 1").await.unwrap();
    assert_eq!(
        &tokio::time::timeout(T, ev.read(0, 100))
            .await
            .unwrap()
            .unwrap()[..],
        b"00000002\n"
    );
    let pending = tokio::spawn(async move { ev.read(0, 100).await });
    drop((a, p, root));
    drop(client);
    let got = tokio::time::timeout(T, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&got[..], b"00000003\n");
    assert_eq!(index(&watcher).await, "tcp!h!2 persist 1\n");
    server.shutdown().await;
}

#[tokio::test]
async fn directory_listing_and_stat() {
    let server = start().await;
    let (_c, root) = connect(&server, "alice").await;
    let a = open(&root, "new", OWRITE).await;
    a.write(0, b"svc1").await.unwrap();
    let anon = open(&root, "new", OWRITE).await;
    let b = open(&root, "new", OWRITE).await;
    b.write(0, b"svc2").await.unwrap();
    let mut d = root.walk::<&str>(&[]).await.unwrap();
    d.open(OREAD).await.unwrap();
    let entries = d.read_dir().await.unwrap();
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["new", "index", "find", "event", "svc1", "svc2"]);
    let modes: Vec<_> = entries.iter().map(|e| e.mode).collect();
    assert_eq!(modes, [0o666, 0o444, 0o666, 0o444, 0o644, 0o644]);
    assert!(
        entries
            .iter()
            .take(4)
            .all(|e| e.uid == "registry" && e.gid == "registry")
    );
    let st = root.stat().await.unwrap();
    assert_eq!(
        (st.mode, st.qid.ty, st.qid.version, st.qid.path),
        (DMDIR | 0o777, QTDIR, 2, 0)
    );
    // Walking from a file fails: it is not a directory.
    let idx = root.walk(&["index"]).await.unwrap();
    assert_eq!(
        remote(idx.walk(&[".."]).await.unwrap_err()),
        "not a directory"
    );
    assert_eq!(root.walk(&[".."]).await.unwrap().qid().path, 0);
    drop(anon);
    server.shutdown().await;
}

#[tokio::test]
async fn directory_reads_follow_styxservers_cursor() {
    let server = start().await;
    let (_c, root) = connect(&server, "alice").await;
    let mut d = root.walk::<&str>(&[]).await.unwrap();
    d.open(OREAD).await.unwrap();
    let all = d.read(0, 8192).await.unwrap();
    let entries = registries::styx::codec::decode_dir(&all).unwrap();
    let first = registries::styx::codec::stat_len(&entries[0]) as u32;
    // Whole entries only: a count that holds one entry gets one, and the cursor continues.
    let one = d.read(0, first + 10).await.unwrap();
    assert_eq!(one.len() as u32, first);
    let next = d.read(u64::from(first), first + 10).await.unwrap();
    assert_eq!(
        registries::styx::codec::decode_dir(&next).unwrap()[0].name,
        "index"
    );
    // A count too small for the next entry gives an empty read.
    assert!(d.read(0, first - 1).await.unwrap().is_empty());
    // An offset that is not where the cursor stands rescans from the start; as in Inferno's
    // styxservers, the entry that ends exactly at that offset is sent again.
    let again = d.read(u64::from(first), 8192).await.unwrap();
    assert_eq!(again, all);
    server.shutdown().await;
}

/// As styxservers answers the open of the root itself: iounit msize − 24; the registry's own
/// files say 0.
#[tokio::test]
async fn root_open_has_the_iounit_of_styxservers() {
    use registries::styx::{Body, NOFID};
    let server = start().await;
    let (client, _root) = connect(&server, "alice").await;
    let attach = Body::Tattach {
        fid: 900,
        afid: NOFID,
        uname: "alice".into(),
        aname: "".into(),
    };
    client.request(attach).await.unwrap();
    let clone = |newfid, wnames: Vec<String>| Body::Twalk {
        fid: 900,
        newfid,
        wnames,
    };
    client.request(clone(901, vec![])).await.unwrap();
    client
        .request(clone(902, vec!["index".into()]))
        .await
        .unwrap();
    let root = client
        .request(Body::Topen {
            fid: 901,
            mode: OREAD,
        })
        .await;
    assert!(matches!(root, Ok(Body::Ropen { iounit, .. }) if iounit == client.msize() - 24));
    let index = client
        .request(Body::Topen {
            fid: 902,
            mode: OREAD,
        })
        .await;
    assert!(matches!(index, Ok(Body::Ropen { iounit: 0, .. })));
}

    };
}
