//! Our 9P client against our 9P server over loopback TCP and in-memory pipes.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::ramfs::RamFs;
use registries::styx::server::{ConnCtx, Limits, serve_connection};
use registries::styx::{
    Body, Client, DMDIR, Error, NOFID, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE, Stat,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LONG: Duration = Duration::from_secs(20);

async fn start(limits: Limits) -> (Arc<RamFs>, std::net::SocketAddr) {
    let fs = RamFs::new();
    let addr = common::serve_fs(fs.clone(), limits).await;
    (fs, addr)
}

async fn connect(addr: std::net::SocketAddr) -> Client {
    Client::connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap()
}

/// Polls `cond` until it holds; a generous bound only to avoid hanging forever.
async fn eventually(mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(LONG, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition never held");
}

#[tokio::test]
async fn walk_open_read_stat_and_errors() {
    let (_fs, addr) = start(Limits::default()).await;
    let c = connect(addr).await;
    assert_eq!(c.msize(), 8216);
    let root = c.attach("glenda", "").await.unwrap();
    assert!(root.qid().is_dir());
    let mut f = root.walk(&["hello"]).await.unwrap();
    f.open(OREAD).await.unwrap();
    assert_eq!(f.read_all().await.unwrap(), b"hello, world\n");
    assert_eq!(f.read(7, 100).await.unwrap().as_ref(), b"world\n");
    let st = f.stat().await.unwrap();
    assert_eq!((st.name.as_str(), st.length), ("hello", 13));
    // The server's texts reach us verbatim.
    let e = root.walk(&["nope"]).await.unwrap_err();
    assert_eq!(e, Error::Remote("file does not exist".into()));
    assert_eq!(e.to_string(), "file does not exist");
    assert_eq!(
        root.walk(&["dir", "nope"]).await.unwrap_err(),
        Error::NotFound("nope".into())
    );
    let e = f.write(0, b"x").await.unwrap_err();
    assert_eq!(e.to_string(), "read/write -- not open in suitable mode");
    let e = f.walk(&["x"]).await.unwrap_err();
    assert_eq!(e.to_string(), "fid already opened");
    let names: Vec<String> = root.walk::<&str>(&[]).await.unwrap().read_dir_open().await;
    assert_eq!(names, ["block", "dir", "hello"]);
}

trait ReadDirOpen {
    async fn read_dir_open(self) -> Vec<String>;
}

impl ReadDirOpen for registries::styx::Fid {
    async fn read_dir_open(mut self) -> Vec<String> {
        self.open(OREAD).await.unwrap();
        self.read_dir()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }
}

#[tokio::test]
async fn create_write_chunked_wstat_remove_orclose() {
    let (fs, addr) = start(Limits::default()).await;
    let c = connect(addr).await;
    let root = c.attach("glenda", "").await.unwrap();
    let mut f = root.try_clone().await.unwrap();
    f.create("big", 0o666, ORDWR).await.unwrap();
    // Larger than msize: split into writes of msize − 24.
    let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    assert_eq!(f.write(0, &data).await.unwrap(), data.len());
    assert_eq!(f.read_all().await.unwrap(), data);
    let e = root
        .try_clone()
        .await
        .unwrap()
        .create("big", 0o666, OWRITE)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "file already exists");
    let mut st = Stat::dont_touch();
    st.name = "renamed".into();
    f.wstat(&st).await.unwrap();
    assert_eq!(f.stat().await.unwrap().name, "renamed");
    f.clunk().await.unwrap();
    // OTRUNC empties it.
    let mut t = root.walk(&["renamed"]).await.unwrap();
    t.open(OWRITE | OTRUNC).await.unwrap();
    assert_eq!(fs.contents("renamed").unwrap().len(), 0);
    // remove consumes the fid.
    root.walk(&["renamed"])
        .await
        .unwrap()
        .remove()
        .await
        .unwrap();
    assert!(fs.contents("renamed").is_none());
    // ORCLOSE removes on clunk.
    let mut g = root.try_clone().await.unwrap();
    g.create("temp", 0o666, OWRITE | ORCLOSE).await.unwrap();
    assert!(fs.contents("temp").is_some());
    g.clunk().await.unwrap();
    assert!(fs.contents("temp").is_none());
}

#[tokio::test]
async fn walks_deeper_than_sixteen() {
    let (_fs, addr) = start(Limits::default()).await;
    let c = connect(addr).await;
    let root = c.attach("glenda", "").await.unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("d{i}")).collect();
    let mut cur = root.try_clone().await.unwrap();
    for n in &names {
        let mut d = cur.try_clone().await.unwrap();
        d.create(n, DMDIR | 0o777, OREAD).await.unwrap();
        cur = cur.walk(&[n]).await.unwrap();
    }
    let deep = root.walk(&names).await.unwrap();
    assert_eq!(deep.qid(), cur.qid());
    let mut wrong = names.clone();
    wrong[30] = "missing".into();
    assert_eq!(
        root.walk(&wrong).await.unwrap_err(),
        Error::NotFound("missing".into())
    );
}

#[tokio::test]
async fn many_requests_in_flight_and_one_file_open_on_many_fids() {
    let (fs, addr) = start(Limits::default()).await;
    let c = connect(addr).await;
    let root = c.attach("glenda", "").await.unwrap();
    let mut fids = Vec::new();
    for _ in 0..8 {
        let mut f = root.walk(&["hello"]).await.unwrap();
        f.open(OREAD).await.unwrap();
        fids.push(f);
    }
    let fids = Arc::new(fids);
    let mut tasks = Vec::new();
    for i in 0..200usize {
        let fids = fids.clone();
        tasks.push(tokio::spawn(async move {
            fids[i % 8].read(0, 5).await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().as_ref(), b"hello");
    }
    let before = fs.clunks.load(Ordering::SeqCst);
    drop(fids);
    // Dropped fids are clunked in the background.
    eventually(|| fs.clunks.load(Ordering::SeqCst) == before + 8).await;
}

#[tokio::test]
async fn dropping_a_pending_read_flushes_it() {
    let (fs, addr) = start(Limits::default()).await;
    let c = connect(addr).await;
    let root = c.attach("glenda", "").await.unwrap();
    let mut b = root.walk(&["block"]).await.unwrap();
    b.open(OREAD).await.unwrap();
    for round in 1..=3 {
        // The blocked read does not hold up others on the same connection.
        let read = b.read(0, 10);
        let other = async {
            let mut h = root.walk(&["hello"]).await.unwrap();
            h.open(OREAD).await.unwrap();
            h.read_all().await.unwrap()
        };
        tokio::select! {
            _ = read => panic!("blocked read returned"),
            data = other => assert_eq!(data, b"hello, world\n"),
        }
        // The read future was dropped: Tflush went out and the server dropped the read.
        eventually(|| fs.cancelled_reads.load(Ordering::SeqCst) == round).await;
    }
    // The connection still works afterwards.
    assert_eq!(
        root.walk(&["hello"])
            .await
            .unwrap()
            .stat()
            .await
            .unwrap()
            .length,
        13
    );
}

#[tokio::test]
async fn connection_end_clunks_every_fid_and_cancels_reads() {
    let (fs, addr) = start(Limits::default()).await;
    let c = connect(addr).await;
    // Raw fids the client will never clunk itself.
    let attach = Body::Tattach {
        fid: 1000,
        afid: NOFID,
        uname: "u".into(),
        aname: "".into(),
    };
    c.request(attach).await.unwrap();
    for n in 0..3 {
        let walk = Body::Twalk {
            fid: 1000,
            newfid: 1001 + n,
            wnames: vec!["block".into()],
        };
        c.request(walk).await.unwrap();
    }
    c.request(Body::Topen {
        fid: 1001,
        mode: OREAD,
    })
    .await
    .unwrap();
    let c2 = c.clone();
    let blocked = tokio::spawn(async move {
        c2.request(Body::Tread {
            fid: 1001,
            offset: 0,
            count: 1,
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(c);
    blocked.abort();
    let _ = blocked.await;
    eventually(|| fs.clunks.load(Ordering::SeqCst) == 4).await;
    eventually(|| fs.cancelled_reads.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test]
async fn connection_loss_fails_pending_requests() {
    let fs = RamFs::new();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(serve_connection(
        b,
        fs.clone(),
        ConnCtx::default(),
        Limits::default(),
    ));
    let c = Client::connect(a).await.unwrap();
    let root = c.attach("u", "").await.unwrap();
    let mut blk = root.walk(&["block"]).await.unwrap();
    blk.open(OREAD).await.unwrap();
    let pending = tokio::spawn(async move { blk.read(0, 1).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.abort();
    let r = tokio::time::timeout(LONG, pending).await.unwrap().unwrap();
    assert!(matches!(r, Err(Error::Disconnected(_))), "{r:?}");
    assert!(matches!(root.stat().await, Err(Error::Disconnected(_))));
}

#[tokio::test]
async fn authenticated_user_overrides_attach_name() {
    let fs = RamFs::new();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let ctx = ConnCtx {
        authenticated_user: Some("alice".into()),
        peer: "test".into(),
        settled: None,
    };
    tokio::spawn(serve_connection(b, fs.clone(), ctx, Limits::default()));
    let c = Client::connect(a).await.unwrap();
    let _root = c.attach("mallory", "").await.unwrap();
    assert_eq!(*fs.users.lock().unwrap(), ["alice"]);
}

#[tokio::test]
async fn limits_are_enforced() {
    let limits = Limits {
        msize: 1024,
        max_fids: 3,
        message_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (_fs, addr) = start(limits).await;
    let c = Client::connect_with_msize(TcpStream::connect(addr).await.unwrap(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(c.msize(), 1024);
    let root = c.attach("u", "").await.unwrap();
    let _a = root.try_clone().await.unwrap();
    let _b = root.try_clone().await.unwrap();
    assert_eq!(
        root.try_clone().await.unwrap_err().to_string(),
        "too many fids"
    );

    // A message over msize: the server hangs up rather than allocating it.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut huge = (1u32 << 30).to_le_bytes().to_vec();
    huge.extend_from_slice(&[116, 0, 0]);
    s.write_all(&huge).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(LONG, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);

    // A half-sent message is cut off after message_timeout.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[50, 0]).await.unwrap();
    let n = tokio::time::timeout(LONG, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn version_negotiation() {
    let (_fs, addr) = start(Limits::default()).await;
    let c = connect(addr).await;
    let r = c
        .request(Body::Tversion {
            msize: 4096,
            version: "9P2000.L".into(),
        })
        .await;
    assert_eq!(
        r,
        Ok(Body::Rversion {
            msize: 4096,
            version: "9P2000".into()
        })
    );
    let r = c
        .request(Body::Tversion {
            msize: 4096,
            version: "Styx99".into(),
        })
        .await;
    assert_eq!(
        r,
        Ok(Body::Rversion {
            msize: 4096,
            version: "unknown".into()
        })
    );
}

#[tokio::test]
async fn outstanding_limit_queues_requests_and_still_reads_flushes() {
    let limits = Limits {
        max_outstanding: 2,
        ..Limits::default()
    };
    let (fs, addr) = start(limits).await;
    let c = connect(addr).await;
    let root = c.attach("u", "").await.unwrap();
    let mut b = root.walk(&["block"]).await.unwrap();
    b.open(OREAD).await.unwrap();
    // Two reads run (and block), a third waits in the server's queue.
    let mut reads: Vec<_> = (0..3).map(|_| Some(Box::pin(b.read(0, 1)))).collect();
    for r in reads.iter_mut().flatten() {
        assert!(futures_util::poll!(r).is_pending());
    }
    // Flush the queued one and a running one: the Tflushes are read although both slots
    // are taken.
    reads[2] = None;
    reads[0] = None;
    eventually(|| fs.cancelled_reads.load(Ordering::SeqCst) == 1).await;
    // Other requests get the freed slot.
    assert_eq!(root.stat().await.unwrap().name, "/");
    reads[1] = None;
    eventually(|| fs.cancelled_reads.load(Ordering::SeqCst) == 2).await;
}

#[tokio::test]
async fn works_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("styx.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let fs = RamFs::new();
    let served = fs.clone();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let ctx = ConnCtx {
            authenticated_user: None,
            peer: "unix".into(),
            settled: None,
        };
        serve_connection(s, served, ctx, Limits::default()).await
    });
    let c = Client::connect(tokio::net::UnixStream::connect(&path).await.unwrap())
        .await
        .unwrap();
    let mut f = c
        .attach("u", "")
        .await
        .unwrap()
        .walk(&["hello"])
        .await
        .unwrap();
    f.open(OREAD).await.unwrap();
    assert_eq!(f.read_all().await.unwrap(), b"hello, world\n");
}

/// The bytes of a Tversion (msize 8216) and a Tattach of fid 1 as `u`, for tests that write
/// their requests all at once.
fn raw_session() -> bytes::BytesMut {
    use registries::styx::Msg;
    let mut out = bytes::BytesMut::new();
    let version = Body::Tversion {
        msize: 8216,
        version: "9P2000".into(),
    };
    let attach = Body::Tattach {
        fid: 1,
        afid: NOFID,
        uname: "u".into(),
        aname: String::new(),
    };
    for (tag, body) in [(0xffff, version), (1, attach)] {
        Msg { tag, body }.encode(&mut out).unwrap();
    }
    out
}

#[tokio::test]
async fn a_peer_that_stops_reading_replies_is_cut_off() {
    use registries::styx::Msg;
    let limits = Limits {
        message_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (fs, addr) = start(limits).await;
    fs.add(0, "big", 0o444, &[7u8; 8192]);
    let mut out = raw_session();
    let mut put = |tag: u16, body: Body| Msg { tag, body }.encode(&mut out).unwrap();
    put(
        2,
        Body::Twalk {
            fid: 1,
            newfid: 2,
            wnames: vec!["big".into()],
        },
    );
    put(
        3,
        Body::Topen {
            fid: 2,
            mode: OREAD,
        },
    );
    // Far more 8 KiB replies than the socket buffers hold.
    for tag in 10..4010 {
        put(
            tag,
            Body::Tread {
                fid: 2,
                offset: 0,
                count: 8192,
            },
        );
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let s = socket.connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    // The server stops reading while its replies pile up, so this write may never finish.
    // Our side stays open all along: an EOF would end the connection for another reason.
    tokio::spawn(async move {
        let _ = wr.write_all(&out).await;
        std::future::pending::<()>().await;
        drop(wr);
    });
    // Read nothing for a while: far longer than the server's patience.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(LONG, async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server kept a peer that did not read");
}

/// Where the framework itself answers, it says what Inferno's styxservers says.
#[tokio::test]
async fn framework_answers_as_styxservers_does() {
    let (_fs, addr) = start(Limits::default()).await;
    let c = connect(addr).await;
    // The afid is ignored: there is no authentication at this layer.
    let attach = Body::Tattach {
        fid: 2000,
        afid: 77,
        uname: "u".into(),
        aname: "".into(),
    };
    assert!(matches!(c.request(attach).await, Ok(Body::Rattach { .. })));
    let walk = Body::Twalk {
        fid: 2000,
        newfid: 2001,
        wnames: vec!["hello".into()],
    };
    c.request(walk).await.unwrap();
    let bad_mode = Body::Topen {
        fid: 2001,
        mode: 0x20,
    };
    assert_eq!(
        c.request(bad_mode).await,
        Err(Error::Remote("bad argument".into()))
    );
    let open = Body::Topen {
        fid: 2001,
        mode: OREAD,
    };
    assert!(matches!(c.request(open).await, Ok(Body::Ropen { .. })));
    let too_much = Body::Tread {
        fid: 2001,
        offset: 0,
        count: c.msize(),
    };
    assert_eq!(
        c.request(too_much).await,
        Err(Error::Remote(
            "read/write -- count negative or exceeds msgsize".into()
        ))
    );
    let most = Body::Tread {
        fid: 2001,
        offset: 0,
        count: c.msize() - 24,
    };
    assert!(matches!(c.request(most).await, Ok(Body::Rread { .. })));
}

/// A Tversion clunks every fid; when the connection's future is dropped while a clunk hook is
/// still waiting, the fids not yet clunked must get theirs all the same.
#[tokio::test]
async fn fids_owed_a_clunk_get_it_when_the_connection_is_dropped_midway() {
    use registries::styx::Msg;
    let fs = RamFs::new();
    let (mut a, b) = tokio::io::duplex(64 * 1024);
    let served = fs.clone();
    let server = tokio::spawn(async move {
        serve_connection(b, served, ConnCtx::default(), Limits::default()).await
    });
    let version = || Body::Tversion {
        msize: 8216,
        version: "9P2000".into(),
    };
    let mut out = raw_session();
    let mut put = |tag: u16, body: Body| Msg { tag, body }.encode(&mut out).unwrap();
    for (tag, newfid) in [(2, 2), (3, 3)] {
        put(
            tag,
            Body::Twalk {
                fid: 1,
                newfid,
                wnames: vec![],
            },
        );
    }
    a.write_all(&out).await.unwrap();
    // Four replies: the session and its three fids exist.
    let mut seen = bytes::BytesMut::new();
    let mut replies = 0;
    while replies < 4 {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(LONG, a.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        seen.extend_from_slice(&buf[..n]);
        while registries::styx::codec::decode_frame(&mut seen, 8216)
            .unwrap()
            .is_some()
        {
            replies += 1;
        }
    }
    fs.hold_clunks();
    let mut again = bytes::BytesMut::new();
    Msg {
        tag: 0xffff,
        body: version(),
    }
    .encode(&mut again)
    .unwrap();
    a.write_all(&again).await.unwrap();
    // The reset has started and its first clunk waits; then the connection is dropped.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.abort();
    let _ = server.await;
    fs.release_clunks();
    eventually(|| fs.clunks.load(Ordering::SeqCst) == 3).await;
}
