//! The `ninep` crate (crates.io, 0.6) as an independent 9P2000 peer: its client against our
//! registry, our client against its server. The limits these tests show are why the registry
//! does not use ninep itself (spec/packages.md).

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::within;
use ninep::fs::{FileTree, FileType, Mode, Perm, Qid, Stat, WStat};
use ninep::sync::client::Client as NinepClient;
use ninep::sync::server::{ClientId, ReadOutcome, Serve9p, Server as NinepServer};
use registries::client::{Attributes, Registry, Service};
use registries::styx::{Client, Error, OREAD, OWRITE};

/// Our registry on a free loopback port: its dial string and port.
async fn registry() -> (String, u16) {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let port = addr.rsplit('!').next().unwrap().parse().unwrap();
    (addr, port)
}

async fn connect(addr: &str, user: &str) -> Registry {
    let svc = Service::new(addr, Attributes::new([("auth", "none")]));
    let a = svc.attach(None, None).await.unwrap();
    Registry::connect_stream(a.fd, Some(user)).await.unwrap()
}

/// Runs `f` with a ninep client attached to the registry on `port` as `glenda`, off the async
/// threads (ninep's client blocks).
async fn with_ninep<T: Send + 'static>(
    port: u16,
    f: impl FnOnce(NinepClient) -> T + Send + 'static,
) -> T {
    within(tokio::task::spawn_blocking(move || {
        let c = NinepClient::new_tcp("glenda", ("127.0.0.1", port), "").expect("ninep attaches");
        f(c)
    }))
    .await
    .unwrap()
}

fn rerror<T: std::fmt::Debug>(r: ninep::sync::client::Result<T>) -> String {
    match r {
        Err(ninep::sync::client::Error::Rerror { ename }) => ename,
        other => panic!("expected an Rerror, got {other:?}"),
    }
}

#[tokio::test]
async fn ninep_client_reads_the_registry() {
    let (addr, port) = registry().await;
    let reg = connect(&addr, "alice").await;
    let attrs = Attributes::new([("proto", "styx"), ("description", "it's a test")]);
    let _held = reg
        .register("tcp!127.0.0.1!7001", &attrs, false)
        .await
        .unwrap();

    let (root, index, file, stat, names, walk_after) = with_ninep(port, |c| {
        let root = c.stat("/").unwrap();
        let index = c.read_str("index").unwrap();
        let file = c.read_str("tcp!127.0.0.1!7001").unwrap();
        let stat = c.stat("tcp!127.0.0.1!7001").unwrap();
        let mut names: Vec<String> = c
            .read_dir("/")
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        names.sort();
        // Listing the root opened the root fid itself, which every walk starts from.
        let walk_after = rerror(c.stat("new"));
        (root, index, file, stat, names, walk_after)
    })
    .await;
    assert_eq!(root.qid.ty, FileType::DIRECTORY);
    assert!(
        names.contains(&"tcp!127.0.0.1!7001".to_string()),
        "{names:?}"
    );
    for f in ["event", "find", "index", "new"] {
        assert!(names.contains(&f.to_string()), "{f} missing from {names:?}");
    }
    assert_eq!(
        index,
        "tcp!127.0.0.1!7001 description 'it''s a test' proto styx\n"
    );
    assert_eq!(file, index, "a service's file holds its index line");
    assert_eq!(stat.owner, "alice");
    assert_eq!(walk_after, "fid already opened");
}

/// ninep keeps one fid per path and opens it for every read or write: a second read of the same
/// file, or a `find` query's answer (read on the fid the query was written to), is refused by any
/// 9P server as an open of an open fid (and so, after `read_dir("/")`, is every walk: see
/// [`ninep_client_reads_the_registry`]).
#[tokio::test]
async fn ninep_holds_one_fid_per_path() {
    let (addr, port) = registry().await;
    let reg = connect(&addr, "alice").await;
    let _held = reg
        .register(
            "tcp!127.0.0.1!7001",
            &Attributes::new([("proto", "styx")]),
            false,
        )
        .await
        .unwrap();

    let (again, find_write, find_read) = with_ninep(port, |c| {
        c.read("index").unwrap();
        let again = rerror(c.read("index"));
        let find_write = c.write_str("find", 0, "proto styx").unwrap();
        let find_read = rerror(c.read("find"));
        (again, find_write, find_read)
    })
    .await;
    assert_eq!(again, "fid already opened");
    assert_eq!(find_write, "proto styx".len());
    assert_eq!(find_read, "fid already opened");
}

/// A registration is an open fid of `new`: ninep's one write registers a service that lives as
/// long as its connection, but a second registration on the same connection is impossible.
#[tokio::test]
async fn ninep_registers_once_per_connection() {
    let (addr, port) = registry().await;
    let reg = connect(&addr, "alice").await;
    let (tx, rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let worker = tokio::task::spawn_blocking(move || {
        let c = NinepClient::new_tcp("glenda", ("127.0.0.1", port), "").unwrap();
        c.write_str("new", 0, "tcp!127.0.0.1!7100 proto ninep")
            .unwrap();
        let second = rerror(c.write_str("new", 0, "tcp!127.0.0.1!7101 proto ninep"));
        done_tx.send(second).unwrap();
        rx.recv().unwrap();
        drop(c);
    });
    let second = within(done_rx).await.unwrap();
    assert_eq!(second, "fid already opened");

    let found = reg.find(&[("proto", "ninep")]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].addr, "tcp!127.0.0.1!7100");
    let owners = reg.owners().await.unwrap();
    assert_eq!(
        owners.get("tcp!127.0.0.1!7100").map(String::as_str),
        Some("glenda")
    );

    // Its connection closed, the registration is gone.
    tx.send(()).unwrap();
    within(worker).await.unwrap();
    within(async {
        while !reg.find(&[("proto", "ninep")]).await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A small tree served by ninep's server: `hello`, `big`, a writable `notes` and `slow`, whose
/// reads never complete (each waits on a channel nobody sends on).
#[derive(Clone)]
struct Tree {
    files: FileTree<Vec<u8>>,
    notes: u64,
    slow: u64,
    waiting: Arc<Mutex<Vec<mpsc::Sender<Vec<u8>>>>>,
}

impl Tree {
    fn new(big: &[u8]) -> Tree {
        let files = FileTree::new("glenda", "glenda", Perm::from_bits_truncate(0o777), vec![]);
        let add = |name: &str, data: &[u8]| {
            let qid = files
                .try_add_node(
                    0,
                    name,
                    Perm::from_bits_truncate(0o666),
                    FileType::FILE,
                    data.to_vec(),
                )
                .unwrap();
            files
                .with_file_mut(qid.path, |f| f.stat.n_bytes = data.len() as u64)
                .unwrap();
            qid.path
        };
        add("hello", b"hello from ninep\n");
        add("big", big);
        let notes = add("notes", b"");
        let slow = add("slow", b"");
        Tree {
            files,
            notes,
            slow,
            waiting: Arc::default(),
        }
    }
}

impl Serve9p for Tree {
    fn walk_one(&self, parent: u64, child: &str, _: ClientId) -> ninep::Result<Qid> {
        self.files.walk_one(parent, child)
    }

    fn open(&self, _: u64, _: Mode, _: ClientId) -> ninep::Result<u32> {
        Ok(0)
    }

    fn create(&self, _: u64, _: &str, _: Perm, _: Mode, _: ClientId) -> ninep::Result<(Qid, u32)> {
        Err("no create here".into())
    }

    fn read(
        &self,
        qid: u64,
        offset: usize,
        count: usize,
        _: ClientId,
    ) -> ninep::Result<ReadOutcome> {
        if qid == self.slow {
            let (tx, rx) = mpsc::channel();
            self.waiting.lock().unwrap().push(tx);
            return Ok(ReadOutcome::Blocked(rx));
        }
        self.files.with_file(qid, |f| {
            let start = offset.min(f.aux.len());
            let end = (start + count).min(f.aux.len());
            ReadOutcome::Immediate(f.aux[start..end].to_vec())
        })
    }

    fn read_dir(&self, qid: u64, _: ClientId) -> ninep::Result<Vec<Stat>> {
        self.files.read_dir(qid)
    }

    fn write(&self, qid: u64, offset: usize, data: Vec<u8>, _: ClientId) -> ninep::Result<usize> {
        self.files.with_file_mut(qid, |f| {
            if f.aux.len() < offset + data.len() {
                f.aux.resize(offset + data.len(), 0);
            }
            f.aux[offset..offset + data.len()].copy_from_slice(&data);
            f.stat.n_bytes = f.aux.len() as u64;
            data.len()
        })
    }

    fn remove(&self, _: u64, _: ClientId) -> ninep::Result<()> {
        Err("no remove here".into())
    }

    fn stat(&self, qid: u64, _: ClientId) -> ninep::Result<Stat> {
        self.files.stat(qid)
    }

    fn write_stat(&self, _: u64, _: WStat, _: ClientId) -> ninep::Result<()> {
        Err("no wstat here".into())
    }
}

#[tokio::test]
async fn our_client_against_ninep_server() {
    let big: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    let tree = Tree::new(&big);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = tree.clone();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        NinepServer::new(served).handle_single_client_stream(stream);
    });

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let c = within(Client::connect(stream)).await.unwrap();
    let root = c.attach("glenda", "").await.unwrap();
    assert!(root.qid().is_dir());

    let mut h = root.walk(&["hello"]).await.unwrap();
    h.open(OREAD).await.unwrap();
    assert_eq!(h.read_all().await.unwrap(), b"hello from ninep\n");
    let st = h.stat().await.unwrap();
    assert_eq!((st.name.as_str(), st.length), ("hello", 17));

    // The same file open on several fids, many reads in flight at once.
    common::styx_checks::reads_on_four_fids(&root, "big", &big).await;

    let mut w = root.walk(&["notes"]).await.unwrap();
    w.open(OWRITE).await.unwrap();
    assert_eq!(w.write(0, b"written by us").await.unwrap(), 13);
    w.clunk().await.unwrap();
    let notes = tree.files.with_file(tree.notes, |f| f.aux.clone()).unwrap();
    assert_eq!(notes, b"written by us");

    assert_eq!(
        common::styx_checks::listing(&root).await,
        ["big", "hello", "notes", "slow"]
    );

    // Its error text reaches us verbatim.
    match root.walk(&["nope"]).await.unwrap_err() {
        Error::Remote(e) => assert!(!e.is_empty()),
        other => panic!("expected its Rerror, got {other:?}"),
    }

    // Reads that never complete are flushed when dropped; ninep answers Rflush and the
    // connection goes on.
    let mut s = root.walk(&["slow"]).await.unwrap();
    s.open(OREAD).await.unwrap();
    common::styx_checks::drop_reads_after_one_poll(&s, 20).await;
    assert_eq!(h.read(0, 5).await.unwrap().as_ref(), b"hello");
    within(async {
        while tree.waiting.lock().unwrap().len() < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
