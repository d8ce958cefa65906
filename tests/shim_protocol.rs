//! The TCP shim (spec/registry.md §8) byte for byte over raw TCP, against an in-process registry.

mod common;

use common::within;

use registries::client::{Attributes, Registry};
use registries::net::Addr;
use registries::registry::RunningServer;
use registries::relay::Remote;
use registries::shim::{Builder, Local, RunningShim, ShimAddrs, ShimPorts};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Fixture {
    server: RunningServer,
    shim: RunningShim,
}

impl Fixture {
    async fn start() -> Fixture {
        let server = common::registry::start().await;
        let shim = Builder::new(Local::new(server.server().clone()))
            .ports(ShimPorts::EPHEMERAL)
            .start()
            .await
            .unwrap();
        Fixture { server, shim }
    }

    fn addrs(&self) -> ShimAddrs {
        self.shim.local_addrs()
    }

    /// A 9P client of the registry, over TCP.
    async fn styx(&self) -> Registry {
        let Addr::Tcp { host, port } = &self.server.local_addrs()[0] else {
            panic!("not tcp");
        };
        let s = TcpStream::connect((host.as_str(), *port)).await.unwrap();
        Registry::connect_stream(s, None).await.unwrap()
    }
}

/// Sends `query` to the find port and returns the whole reply.
async fn find_raw(addr: SocketAddr, query: &[u8]) -> Vec<u8> {
    within(async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(query).await.unwrap();
        if query.is_empty() {
            // No line at all: end the stream so the server sees end of file.
            s.shutdown().await.unwrap();
        }
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        out
    })
    .await
}

/// An event port connection after its `READY` line.
async fn watch(addr: SocketAddr) -> BufReader<TcpStream> {
    let mut r = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let mut line = String::new();
    within(r.read_line(&mut line)).await.unwrap();
    assert_eq!(line, "READY\n");
    r
}

/// The next event line, checked to be `%8.8d\n`.
async fn next_event(r: &mut BufReader<TcpStream>) -> u64 {
    let mut line = String::new();
    within(r.read_line(&mut line)).await.unwrap();
    assert_eq!(line.len(), 9, "event line {line:?}");
    assert!(line.ends_with('\n'));
    line.trim_end().parse().unwrap()
}

#[tokio::test]
async fn registration_with_quotes_is_visible_through_9p_byte_for_byte() {
    let f = Fixture::start().await;
    let reg9p = f.styx().await;
    let mut ev = watch(f.addrs().event).await;
    let mut new = TcpStream::connect(f.addrs().new).await.unwrap();
    // As Perl's quote() writes it: a name with a quote, values with blanks and quotes, a
    // trailing blank when there are no attributes left.
    new.write_all(b"'svc''s!1' desc 'a b' q 'it''s' e ''\n")
        .await
        .unwrap();
    next_event(&mut ev).await;
    let via9p = reg9p.find(&[("desc", "a b")]).await.unwrap();
    assert_eq!(via9p.len(), 1);
    assert_eq!(via9p[0].addr, "svc's!1");
    assert_eq!(via9p[0].attrs.get("q"), Some("it's"));
    assert_eq!(via9p[0].attrs.get("e"), Some(""));
    // The shim's reply is the registry's own line.
    let line = format!("{}\n", via9p[0]);
    assert_eq!(
        find_raw(f.addrs().find, b"desc 'a b'\n").await,
        line.as_bytes()
    );
    assert_eq!(
        find_raw(f.addrs().find, b"q 'it''s'\n").await,
        line.as_bytes()
    );
    assert!(line.starts_with("'svc''s!1' "));
    assert!(line.contains(" desc 'a b'") && line.contains(" q 'it''s'") && line.contains(" e ''"));

    // A later line updates.
    new.write_all(b"desc 'c d'\n").await.unwrap();
    next_event(&mut ev).await;
    let now = reg9p.find(&[("desc", "c d")]).await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].attrs.get("q"), Some("it's"));

    // Closing unregisters.
    drop(new);
    next_event(&mut ev).await;
    assert!(reg9p.services().await.unwrap().is_empty());
    assert!(find_raw(f.addrs().find, b"\n").await.is_empty());
}

#[tokio::test]
async fn registration_through_9p_is_visible_through_the_shim() {
    let f = Fixture::start().await;
    let reg9p = f.styx().await;
    let attrs = Attributes::new([("proto", "styx"), ("note", "x 'y' z")]);
    let _a = reg9p.register("tcp!h!1", &attrs, false).await.unwrap();
    let _b = reg9p
        .register("tcp!h!2", &Attributes::new([("proto", "http")]), false)
        .await
        .unwrap();
    let all = String::from_utf8(find_raw(f.addrs().find, b"\n").await).unwrap();
    let index: String = reg9p
        .services()
        .await
        .unwrap()
        .iter()
        .map(|s| format!("{s}\n"))
        .collect();
    assert_eq!(all, index);
    assert_eq!(all.lines().count(), 2);
    let styx = find_raw(f.addrs().find, b"proto styx\n").await;
    // registry(4) lists attributes newest first, as Inferno's does.
    assert_eq!(
        String::from_utf8(styx).unwrap(),
        "tcp!h!1 note 'x ''y'' z' proto styx\n"
    );
    assert_eq!(
        find_raw(f.addrs().find, b"proto *\n").await.len(),
        all.len()
    );
    assert!(find_raw(f.addrs().find, b"proto none\n").await.is_empty());
    // A client that closes without a line gets everything, as Inferno's listen script does.
    assert_eq!(find_raw(f.addrs().find, b"").await, all.as_bytes());
}

#[tokio::test]
async fn failed_registration_closes_the_connection() {
    let f = Fixture::start().await;
    let reg9p = f.styx().await;
    let _held = reg9p
        .register("dup", &Attributes::default(), false)
        .await
        .unwrap();
    for line in [
        &b"dup a b\n"[..],
        b"bad/name\n",
        b"odd x\n",
        b"new\n",
        b"\n",
    ] {
        let mut s = TcpStream::connect(f.addrs().new).await.unwrap();
        s.write_all(line).await.unwrap();
        let mut buf = Vec::new();
        // The server closes its side and sends nothing.
        within(s.read_to_end(&mut buf)).await.unwrap();
        assert!(buf.is_empty());
    }
    assert_eq!(reg9p.services().await.unwrap().len(), 1);
    // A bad update closes the connection too, and the service goes with it.
    let mut ev = watch(f.addrs().event).await;
    let mut s = TcpStream::connect(f.addrs().new).await.unwrap();
    s.write_all(b"good a b\n").await.unwrap();
    next_event(&mut ev).await;
    s.write_all(b"odd\n").await.unwrap();
    let mut buf = Vec::new();
    within(s.read_to_end(&mut buf)).await.unwrap();
    next_event(&mut ev).await;
    assert_eq!(reg9p.services().await.unwrap().len(), 1);
}

#[tokio::test]
async fn one_mebibyte_find_reply() {
    let f = Fixture::start().await;
    let reg9p = f.styx().await;
    let big = "v".repeat(7900);
    let mut held = Vec::new();
    for i in 0..140 {
        let attrs = Attributes::new([("big", big.as_str()), ("kind", "bulk")]);
        held.push(
            reg9p
                .register(&format!("tcp!bulk!{i}"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    let reply = find_raw(f.addrs().find, b"kind bulk\n").await;
    assert!(reply.len() > 1024 * 1024, "reply {} bytes", reply.len());
    assert_eq!(reply.iter().filter(|&&b| b == b'\n').count(), 140);
    assert!(reply.ends_with(b"\n"));
    let shim = Registry::connect_shim("127.0.0.1", f.addrs().ports())
        .await
        .unwrap();
    let found = shim.find(&[("kind", "bulk")]).await.unwrap();
    assert_eq!(found.len(), 140);
    assert_eq!(found[0].attrs.get("big"), Some(big.as_str()));
}

#[tokio::test]
async fn changes_right_after_ready_are_seen() {
    let f = Fixture::start().await;
    let reg9p = f.styx().await;
    let mut last = 0;
    for i in 0..25 {
        let mut ev = watch(f.addrs().event).await;
        // Change at once after READY: the event file was opened before READY was sent.
        let held = reg9p
            .register(&format!("race!{i}"), &Attributes::default(), false)
            .await
            .unwrap();
        let n = next_event(&mut ev).await;
        assert!(n > last);
        last = n;
        held.close().await.unwrap();
    }
    // Coalescing: many changes before a read give one line with the latest count.
    let mut ev = watch(f.addrs().event).await;
    for i in 0..5 {
        reg9p
            .register(&format!("burst!{i}"), &Attributes::default(), true)
            .await
            .unwrap();
    }
    let n = next_event(&mut ev).await;
    assert!(n > last);
}

#[tokio::test]
async fn shim_client_gives_the_registry_api() {
    let f = Fixture::start().await;
    let reg9p = f.styx().await;
    let shim = Registry::connect_shim("127.0.0.1", f.addrs().ports())
        .await
        .unwrap();
    let attrs = Attributes::new([("proto", "styx"), ("descr", "it's a test")]);
    let mut held = shim.register("tcp!s!1", &attrs, false).await.unwrap();
    let seen = reg9p.find(&[("proto", "styx")]).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].attrs.get("descr"), Some("it's a test"));
    assert_eq!(shim.find(&[("proto", "styx")]).await.unwrap(), seen);
    assert_eq!(
        shim.services().await.unwrap(),
        reg9p.services().await.unwrap()
    );

    // Duplicate names are refused with registry(4)'s diagnostic; bad names too.
    let e = shim
        .register("tcp!s!1", &Attributes::default(), false)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "duplicate service name");
    let e = shim
        .register("a/b", &Attributes::default(), false)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "bad character in service name");

    // Events, updates, and unregistering by closing.
    use futures_util::StreamExt;
    let mut events = shim.events().await.unwrap();
    held.update(&Attributes::new([("load", "5")]))
        .await
        .unwrap();
    within(events.next()).await.unwrap().unwrap();
    assert_eq!(
        reg9p.find(&[("load", "5")]).await.unwrap()[0].addr,
        "tcp!s!1"
    );
    let e = shim.unregister("tcp!s!1").await.unwrap_err();
    assert!(
        matches!(e, registries::client::Error::Unsupported(_)),
        "{e}"
    );
    held.close().await.unwrap();
    assert!(reg9p.services().await.unwrap().is_empty());

    // A registration made through 9P is found through the shim client.
    let _p = reg9p
        .register("tcp!p!1", &Attributes::new([("x", "y")]), false)
        .await
        .unwrap();
    assert_eq!(shim.find(&[("x", "y")]).await.unwrap()[0].addr, "tcp!p!1");
}

#[tokio::test]
async fn perl_client_lines_and_newlines_inside_quotes() {
    let f = Fixture::start().await;
    let mut ev = watch(f.addrs().event).await;
    // Inferno::RegMgr::TCP writes `quote(name) attr(...)\n`: a trailing blank when there are
    // no attributes.
    let mut a = TcpStream::connect(f.addrs().new).await.unwrap();
    a.write_all(b"tcp!bare!1 \n").await.unwrap();
    next_event(&mut ev).await;
    assert_eq!(find_raw(f.addrs().find, b"\n").await, b"tcp!bare!1\n");
    // A value holding a newline is quoted, so its newline does not end the line; it may also
    // arrive in pieces.
    let mut b = TcpStream::connect(f.addrs().new).await.unwrap();
    b.write_all(b"tcp!nl!1 text 'one\n").await.unwrap();
    b.flush().await.unwrap();
    b.write_all(b"two' k v\n").await.unwrap();
    next_event(&mut ev).await;
    let reply = find_raw(f.addrs().find, b"k v\n").await;
    let text = String::from_utf8(reply).unwrap();
    assert!(
        text.starts_with("tcp!nl!1 ") && text.contains(" text 'one\ntwo'"),
        "{text:?}"
    );
    let shim = Registry::connect_shim("127.0.0.1", f.addrs().ports())
        .await
        .unwrap();
    let found = shim.find(&[("k", "v")]).await.unwrap();
    assert_eq!(found[0].attrs.get("text"), Some("one\ntwo"));
    drop((a, b));
}

#[tokio::test]
async fn remote_upstream_loss_closes_registrations_and_recovers() {
    let server = common::registry::start().await;
    let Addr::Tcp { port, .. } = server.local_addrs()[0].clone() else {
        panic!("not tcp");
    };
    let shim = Builder::new(Remote::new(format!("tcp!127.0.0.1!{port}")))
        .ports(ShimPorts::EPHEMERAL)
        .start()
        .await
        .unwrap();
    let addrs = shim.local_addrs();
    let mut ev = watch(addrs.event).await;
    let mut held = TcpStream::connect(addrs.new).await.unwrap();
    held.write_all(b"tcp!r!1 a b\n").await.unwrap();
    next_event(&mut ev).await;
    assert_eq!(find_raw(addrs.find, b"\n").await, b"tcp!r!1 a b\n");

    // The registry goes: the registration's and the watcher's connections are closed.
    server.shutdown().await;
    let mut rest = Vec::new();
    within(held.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
    let mut rest = Vec::new();
    within(ev.read_to_end(&mut rest)).await.unwrap();

    // It comes back on the same port: the shim dials again for the next client.
    let server = common::registry::restart_on(port).await;
    let mut ev = watch(addrs.event).await;
    let mut again = TcpStream::connect(addrs.new).await.unwrap();
    again.write_all(b"tcp!r!2 c d\n").await.unwrap();
    next_event(&mut ev).await;
    assert_eq!(find_raw(addrs.find, b"\n").await, b"tcp!r!2 c d\n");
    shim.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_relay_uses_the_next_registry_when_the_first_does_not_answer() {
    let server = common::registry::start().await;
    let Addr::Tcp { port, .. } = server.local_addrs()[0].clone() else {
        panic!("not tcp");
    };
    // Nothing listens on port 1: the relay goes on to the next registry given.
    let remote = Remote::new("tcp!127.0.0.1!1").or(format!("tcp!127.0.0.1!{port}"));
    let shim = Builder::new(remote)
        .ports(ShimPorts::EPHEMERAL)
        .start()
        .await
        .unwrap();
    let addrs = shim.local_addrs();
    let mut held = TcpStream::connect(addrs.new).await.unwrap();
    held.write_all(b"tcp!r!2 a b\n").await.unwrap();
    let mut text = Vec::new();
    for _ in 0..100 {
        text = find_raw(addrs.find, b"\n").await;
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(text, b"tcp!r!2 a b\n");
    assert_eq!(server.server().len(), 1);
}
