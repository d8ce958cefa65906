//! Scale checks that print figures (no timing assertions): many `event` watchers held at once
//! and all woken by one change. (`find` over many services through the index is a unit test of
//! the registry state: `find_over_many_services`.)
//!
//! `REGISTRY_SCALE_WATCHERS` (default 1000) and `REGISTRY_SCALE_SERVICES` (default 100000) set
//! the sizes; run with `--nocapture` (and `--release`) to see the figures.

mod common;

use registries::styx::{Body, Msg, NOFID, NOTAG, OREAD, OWRITE};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn send(s: &mut TcpStream, tag: u16, body: Body) {
    s.write_all(&Msg { tag, body }.to_bytes().unwrap())
        .await
        .unwrap();
}

async fn recv(s: &mut TcpStream) -> Msg {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.unwrap();
    let mut buf = vec![0u8; u32::from_le_bytes(head) as usize];
    buf[..4].copy_from_slice(&head);
    s.read_exact(&mut buf[4..]).await.unwrap();
    Msg::decode_slice(&buf, 8216).unwrap()
}

async fn rpc(s: &mut TcpStream, tag: u16, body: Body) -> Body {
    send(s, tag, body).await;
    recv(s).await.body
}

/// Tversion, then Tattach of fid 1 as `user`.
async fn handshake(s: &mut TcpStream, user: &str) {
    let version = Body::Tversion {
        msize: 8216,
        version: "9P2000".into(),
    };
    rpc(s, NOTAG, version).await;
    let attach = Body::Tattach {
        fid: 1,
        afid: NOFID,
        uname: user.into(),
        aname: String::new(),
    };
    rpc(s, 1, attach).await;
}

/// A connection with `n` event fids, each with a read held.
async fn watcher_conn(addr: String, n: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    handshake(&mut s, "w").await;
    for i in 0..n as u32 {
        let fid = 10 + i;
        let walk = Body::Twalk {
            fid: 1,
            newfid: fid,
            wnames: vec!["event".into()],
        };
        assert!(matches!(rpc(&mut s, 1, walk).await, Body::Rwalk { .. }));
        assert!(matches!(
            rpc(&mut s, 1, Body::Topen { fid, mode: OREAD }).await,
            Body::Ropen { .. }
        ));
    }
    for i in 0..n as u16 {
        send(
            &mut s,
            100 + i,
            Body::Tread {
                fid: 10 + u32::from(i),
                offset: 0,
                count: 64,
            },
        )
        .await;
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_event_watchers() {
    let watchers = env("REGISTRY_SCALE_WATCHERS", 1000);
    let per_conn = 200;
    let server = common::registry::start().await;
    let addr = server.local_addrs()[0].socket_addr_string().unwrap();
    let before = rss_kib();
    let mut tasks = Vec::new();
    let mut left = watchers;
    while left > 0 {
        let n = left.min(per_conn);
        left -= n;
        tasks.push(tokio::spawn(watcher_conn(addr.clone(), n)));
    }
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(t.await.unwrap());
    }
    // Let the held reads reach the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = rss_kib();
    let t0 = Instant::now();
    let mut r = TcpStream::connect(&addr).await.unwrap();
    handshake(&mut r, "r").await;
    rpc(
        &mut r,
        1,
        Body::Twalk {
            fid: 1,
            newfid: 2,
            wnames: vec!["new".into()],
        },
    )
    .await;
    rpc(
        &mut r,
        1,
        Body::Topen {
            fid: 2,
            mode: OWRITE,
        },
    )
    .await;
    rpc(
        &mut r,
        1,
        Body::Twrite {
            fid: 2,
            offset: 0,
            data: "tcp!h!1".into(),
        },
    )
    .await;
    let mut woken = 0;
    for mut c in conns {
        let n = watchers.min(per_conn).min(watchers - woken);
        for _ in 0..n {
            let m = tokio::time::timeout(Duration::from_secs(30), recv(&mut c))
                .await
                .unwrap();
            assert_eq!(
                m.body,
                Body::Rread {
                    data: "00000001\n".into()
                }
            );
            woken += 1;
        }
    }
    assert_eq!(woken, watchers);
    let elapsed = t0.elapsed();
    if let (Some(b), Some(h)) = (before, held) {
        println!(
            "registry scale: {watchers} held event reads: RSS {b} KiB -> {h} KiB ({:.2} KiB per watcher, client side included)",
            (h.saturating_sub(b)) as f64 / watchers as f64
        );
    }
    println!("registry scale: one change woke {watchers} watchers in {elapsed:?}");
    server.shutdown().await;
}

/// Inferno's registry has no fid cap: one connection holding 10,000 registrations (each an open
/// fid of `new`) works here too.
#[tokio::test]
async fn one_connection_holds_ten_thousand_registrations() {
    let server = common::registry::start().await;
    let reg = registries::Registry::open(&server.local_addrs()[0].to_string())
        .await
        .unwrap();
    let attrs = registries::Attributes::new([("k", "v")]);
    let mut held = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let r = common::within(reg.register(&format!("tcp!h{i}!1"), &attrs, false))
            .await
            .unwrap_or_else(|e| panic!("registration {i}: {e}"));
        held.push(r);
    }
    assert_eq!(server.server().len(), 10_000);
    assert_eq!(reg.find(&[("k", "v")]).await.unwrap().len(), 10_000);
}

/// 1,200 `event` reads held on one connection, then a Tflush for each: every Tflush is
/// answered (reads beyond what the connection serves at once are refused at once, never left
/// unanswered), and the connection still works afterwards.
#[tokio::test]
async fn every_tflush_is_answered_behind_1200_held_reads() {
    let server = common::registry::start().await;
    let addr = server.local_addrs()[0].socket_addr_string().unwrap();
    let mut s = watcher_conn(addr, 1200).await;
    for i in 0..1200u16 {
        send(&mut s, 2000 + i, Body::Tflush { oldtag: 100 + i }).await;
    }
    let mut flushed = std::collections::HashSet::new();
    let mut refused = 0;
    common::within(async {
        while flushed.len() < 1200 {
            let m = recv(&mut s).await;
            match m.body {
                Body::Rflush => assert!(flushed.insert(m.tag), "two Rflush for {}", m.tag),
                Body::Rerror { ename } if (100..1300).contains(&m.tag) => {
                    assert_eq!(ename, "too many outstanding requests");
                    refused += 1;
                }
                other => panic!("unexpected reply to {}: {other:?}", m.tag),
            }
        }
    })
    .await;
    assert!(refused > 0 && refused < 1200, "refused {refused}");
    // Still a working connection.
    let walk = Body::Twalk {
        fid: 1,
        newfid: 5000,
        wnames: vec!["index".into()],
    };
    assert!(matches!(rpc(&mut s, 7, walk).await, Body::Rwalk { .. }));
}
