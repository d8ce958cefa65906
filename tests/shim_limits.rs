//! The shim's limits: an idle find connection is closed, a slow reader of a find reply is not
//! unless it passes the reply deadline, a find whose reply would pass the budget of unsent
//! bytes is refused, and beyond a port's connection cap a client waits until a slot is free,
//! while the other ports are served.

mod common;

use common::within;

use registries::client::{Attributes, Registry};
use registries::net::Addr;
use registries::registry::RunningServer;
use registries::shim::{Builder, Local, RunningShim, ShimLimits, ShimPorts};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A registry and a shim in front of it with `limits`.
async fn fixture(limits: ShimLimits) -> (RunningServer, RunningShim) {
    let server = common::registry::start().await;
    let shim = Builder::new(Local::new(server.server().clone()))
        .ports(ShimPorts::EPHEMERAL)
        .limits(limits)
        .start()
        .await
        .unwrap();
    (server, shim)
}

/// A 9P client of `server`'s registry.
async fn styx(server: &RunningServer) -> Registry {
    let Some(Addr::Tcp { host, port }) = server.local_addrs().first().cloned() else {
        panic!("not tcp");
    };
    let s = TcpStream::connect((host.as_str(), port)).await.unwrap();
    Registry::connect_stream(s, None).await.unwrap()
}

/// Reads until the peer closes; what came, or the error that ended it (a reset is a close too).
async fn read_to_close(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::new();
    within(s.read_to_end(&mut got)).await.map(|_| got)
}

#[tokio::test]
async fn idle_find_connection_is_closed() {
    let limits = ShimLimits {
        find_deadline: Some(Duration::from_millis(200)),
        ..ShimLimits::default()
    };
    let (_server, shim) = fixture(limits).await;
    let find = shim.local_addrs().find;

    // Sends nothing: the shim closes it, with no reply.
    let mut idle = TcpStream::connect(find).await.unwrap();
    match read_to_close(&mut idle).await {
        Ok(got) => assert!(got.is_empty(), "idle connection got {got:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }

    // Half a query, then a byte now and then: closed at the deadline all the same.
    let mut trickle = TcpStream::connect(find).await.unwrap();
    let started = std::time::Instant::now();
    let dripping = async {
        for b in b"proto styx" {
            if trickle.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    dripping.await;
    match read_to_close(&mut trickle).await {
        Ok(got) => assert!(got.is_empty(), "trickling query got {got:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // Half a query, then silence: closed as well.
    let mut partial = TcpStream::connect(find).await.unwrap();
    partial.write_all(b"proto ").await.unwrap();
    match read_to_close(&mut partial).await {
        Ok(got) => assert!(got.is_empty(), "partial query got {got:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[tokio::test]
async fn a_new_port_connection_without_its_first_line_is_closed() {
    let limits = ShimLimits {
        new_deadline: Some(Duration::from_millis(200)),
        ..ShimLimits::default()
    };
    let (_server, shim) = fixture(limits).await;
    let mut silent = TcpStream::connect(shim.local_addrs().new).await.unwrap();
    match read_to_close(&mut silent).await {
        Ok(got) => assert!(got.is_empty(), "got {got:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // A registration made in time stays, quiet, past the deadline.
    let mut held = TcpStream::connect(shim.local_addrs().new).await.unwrap();
    held.write_all(b"tcp!kept!1 k v\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut q = TcpStream::connect(shim.local_addrs().find).await.unwrap();
    q.write_all(b"k v\n").await.unwrap();
    let got = read_to_close(&mut q).await.unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), "tcp!kept!1 k v\n");
}

#[tokio::test]
async fn slow_reader_of_a_find_reply_gets_all_of_it() {
    let limits = ShimLimits {
        find_deadline: Some(Duration::from_millis(200)),
        ..ShimLimits::default()
    };
    let (server, shim) = fixture(limits).await;
    let reg = styx(&server).await;
    // A reply larger than the socket buffers, so that writing it waits for the reader.
    let big = "x".repeat(2000);
    let mut held = Vec::new();
    for i in 0..400 {
        let attrs = Attributes::new([("kind", "big"), ("pad", big.as_str())]);
        held.push(
            reg.register(&format!("svc{i}"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    let mut s = TcpStream::connect(shim.local_addrs().find).await.unwrap();
    s.write_all(b"kind big\n").await.unwrap();
    // Far longer than the idle timeout before reading anything.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = read_to_close(&mut s).await.expect("whole reply");
    let text = String::from_utf8(got).unwrap();
    assert_eq!(text.lines().count(), 400);
    assert!(text.lines().all(|l| l.contains(big.as_str())));
}

/// Registers `n` services of about 2 KB each through `reg`, all `kind big`.
async fn big_catalog(reg: &Registry, n: usize) -> Vec<registries::client::Registered> {
    let big = "x".repeat(2000);
    let mut held = Vec::new();
    for i in 0..n {
        let attrs = Attributes::new([("kind", "big"), ("pad", big.as_str())]);
        held.push(
            reg.register(&format!("svc{i}"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    held
}

#[tokio::test]
async fn reader_that_does_not_take_its_reply_is_closed_at_the_reply_deadline() {
    let limits = ShimLimits {
        reply_deadline: Some(Duration::from_millis(300)),
        ..ShimLimits::default()
    };
    let (server, shim) = fixture(limits).await;
    let reg = styx(&server).await;
    // More than loopback's socket buffers take (they grow to a few MB).
    let _held = big_catalog(&reg, 6000).await;
    let mut s = TcpStream::connect(shim.local_addrs().find).await.unwrap();
    s.write_all(b"kind big\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // What the socket buffers took before the deadline, then the close: never the whole reply.
    let got = read_to_close(&mut s).await.unwrap_or_default();
    assert!(
        got.len() < 6000 * 2000,
        "a reader past the deadline got its whole reply ({} bytes)",
        got.len()
    );
    // A reader that reads at once is served in full.
    let mut s = TcpStream::connect(shim.local_addrs().find).await.unwrap();
    s.write_all(b"kind big\n").await.unwrap();
    let got = read_to_close(&mut s).await.unwrap();
    assert_eq!(String::from_utf8(got).unwrap().lines().count(), 6000);
}

#[tokio::test]
async fn find_past_the_reply_budget_is_refused_and_smaller_ones_answered() {
    let limits = ShimLimits {
        reply_budget: 100_000,
        ..ShimLimits::default()
    };
    let (server, shim) = fixture(limits).await;
    let reg = styx(&server).await;
    let _held = big_catalog(&reg, 400).await;
    let _small = reg
        .register("tcp!small!1", &Attributes::new([("kind", "small")]), false)
        .await
        .unwrap();
    let mut s = TcpStream::connect(shim.local_addrs().find).await.unwrap();
    s.write_all(b"kind big\n").await.unwrap();
    let got = read_to_close(&mut s).await.unwrap_or_default();
    assert!(got.is_empty(), "a reply past the budget was sent");
    let mut s = TcpStream::connect(shim.local_addrs().find).await.unwrap();
    s.write_all(b"kind small\n").await.unwrap();
    let got = read_to_close(&mut s).await.unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), "tcp!small!1 kind small\n");
}

#[tokio::test]
async fn connections_beyond_a_port_s_cap_wait_and_other_ports_are_served() {
    let limits = ShimLimits {
        max_connections: 2,
        ..ShimLimits::default()
    };
    let (server, shim) = fixture(limits).await;
    let addrs = shim.local_addrs();
    let reg = styx(&server).await;
    let _svc = reg
        .register("tcp!a!1", &Attributes::new([("proto", "styx")]), false)
        .await
        .unwrap();

    // Two event watchers take both slots; READY shows each is being served.
    let mut watchers = Vec::new();
    for _ in 0..2 {
        let s = TcpStream::connect(addrs.event).await.unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        within(r.read_line(&mut line)).await.unwrap();
        assert_eq!(line, "READY\n");
        watchers.push(r);
    }

    // Another port has a cap of its own: a find is served at once.
    let mut other = TcpStream::connect(addrs.find).await.unwrap();
    other.write_all(b"proto styx\n").await.unwrap();
    let got = read_to_close(&mut other).await.expect("reply");
    assert_eq!(String::from_utf8(got).unwrap(), "tcp!a!1 proto styx\n");

    // A third event watcher is queued, not served.
    let mut third = BufReader::new(TcpStream::connect(addrs.event).await.unwrap());
    let mut line = String::new();
    let early = tokio::time::timeout(Duration::from_millis(500), third.read_line(&mut line)).await;
    assert!(early.is_err(), "served beyond the cap: {early:?}");

    // One watcher leaves: the third is served.
    drop(watchers.pop());
    within(third.read_line(&mut line)).await.unwrap();
    assert_eq!(line, "READY\n");

    // And the slot the leaver used is free again afterwards for the next one.
    drop(watchers.pop());
    let mut fourth = BufReader::new(TcpStream::connect(addrs.event).await.unwrap());
    let mut line = String::new();
    within(fourth.read_line(&mut line)).await.unwrap();
    assert_eq!(line, "READY\n");
}
