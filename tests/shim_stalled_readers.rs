//! Find clients of the shim that never read share one rendered answer: 40 of them, stalled on an
//! 8 MB `index`, add far less than an answer's worth of memory each. (An answer of 8 MB, not 2:
//! loopback's socket buffers grow to several MB and would take a smaller one off our hands.) A test binary of its own,
//! so that no other test moves the process's RSS while it measures.

mod common;

use registries::client::{Attributes, Registry};
use registries::net::Addr;
use registries::shim::{Builder, Local, ShimLimits, ShimPorts};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The process's resident set, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn stalled_find_readers_share_one_answer() {
    let server = common::registry::start().await;
    let shim = Builder::new(Local::new(server.server().clone()))
        .ports(ShimPorts::EPHEMERAL)
        .limits(ShimLimits::default())
        .start()
        .await
        .unwrap();
    let Some(Addr::Tcp { host, port }) = server.local_addrs().first().cloned() else {
        panic!("not tcp");
    };
    let s = TcpStream::connect((host.as_str(), port)).await.unwrap();
    let reg = Registry::connect_stream(s, None).await.unwrap();
    let pad = "x".repeat(2000);
    let mut held = Vec::new();
    for i in 0..4000 {
        let attrs = Attributes::new([("pad", pad.as_str())]);
        held.push(
            reg.register(&format!("svc{i}"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    let find = shim.local_addrs().find;

    // One whole read first, so that what the answer needs once is in the baseline.
    let mut first = TcpStream::connect(find).await.unwrap();
    first.write_all(b"\n").await.unwrap();
    let mut answer = Vec::new();
    common::within(first.read_to_end(&mut answer))
        .await
        .unwrap();
    assert!(answer.len() > 8_000_000, "answer of {} bytes", answer.len());
    drop(answer);
    let before = rss();

    let mut stalled = Vec::new();
    for _ in 0..40 {
        // A small receive buffer, so that the kernel holds little of the reply for the client.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut s = sock.connect(find).await.unwrap();
        s.write_all(b"\n").await.unwrap();
        stalled.push(s);
    }
    // Time for every reply to be rendered (or shared) and to fill the socket buffers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = rss().saturating_sub(before);
    println!("40 stalled readers of an 8 MB answer: RSS grew {grown} bytes");
    assert!(
        grown < 40 * 8_000_000 / 10,
        "40 stalled readers grew RSS by {grown} bytes"
    );
    drop(stalled);
}
