//! The client's heartbeat (spec/registry.md §9): a registry that goes silent, its connection
//! still open (a host cut off sends no reset), is given up within the bound; one that answers
//! is kept however long nothing changes; and with the heartbeat off nothing is sent.
//!
//! The silence is made by a relay between client and registry that stops passing bytes in
//! either direction while keeping both sockets open.

mod common;

use futures_util::StreamExt;
use registries::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A relay in front of `upstream` for one connection: passes bytes both ways until `silent`
/// is set, then holds both connections open and passes nothing. Counts the bytes the client
/// sent. Returns its dial string.
async fn relay(upstream: String, silent: Arc<AtomicBool>, sent: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(upstream).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let (s1, s2) = (silent.clone(), silent);
        let up = tokio::spawn(async move {
            let mut buf = vec![0; 65536];
            while let Ok(n) = cr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sent.fetch_add(n as u64, Ordering::Relaxed);
                if !s1.load(Ordering::Relaxed) {
                    let _ = sw.write_all(&buf[..n]).await;
                }
            }
            // Hold the upstream open, as a cut-off host's connection stays.
            std::future::pending::<()>().await;
            drop(sw);
        });
        let down = tokio::spawn(async move {
            let mut buf = vec![0; 65536];
            while let Ok(n) = sr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if !s2.load(Ordering::Relaxed) {
                    let _ = cw.write_all(&buf[..n]).await;
                }
            }
            std::future::pending::<()>().await;
            drop(cw);
        });
        let _ = tokio::join!(up, down);
    });
    format!("tcp!127.0.0.1!{port}")
}

/// The upstream `host:port` of a registry started for the test.
async fn registry() -> String {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let port = addr.rsplit('!').next().unwrap();
    format!("127.0.0.1:{port}")
}

#[tokio::test]
async fn a_silent_registry_is_given_up_within_the_bound() {
    let silent = Arc::new(AtomicBool::new(false));
    let addr = relay(registry().await, silent.clone(), Arc::default()).await;
    let reg = Registry::open(&addr).await.unwrap();
    reg.set_heartbeat(Duration::from_secs(1));
    let mut events = reg.events().await.unwrap();
    silent.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("the event stream ended within 10 s");
    let took = start.elapsed();
    match ended {
        Some(Err(e)) => assert!(e.to_string().contains("heartbeat"), "{e}"),
        other => panic!("the event stream went on: {other:?}"),
    }
    // The bound, plus a scheduling margin for a loaded machine.
    assert!(took < Duration::from_secs(3), "given up after {took:?}");
    assert!(reg.services().await.is_err());
}

#[tokio::test]
async fn an_answering_registry_is_kept_while_nothing_changes() {
    let sent = Arc::new(AtomicU64::new(0));
    let addr = relay(registry().await, Arc::default(), sent.clone()).await;
    let reg = Registry::open(&addr).await.unwrap();
    reg.set_heartbeat(Duration::from_millis(400));
    let mut events = reg.events().await.unwrap();
    let before = sent.load(Ordering::Relaxed);
    // Several bounds without a change: the probes are answered and nothing ends.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), events.next())
            .await
            .is_err()
    );
    assert!(sent.load(Ordering::Relaxed) > before, "no probe was sent");
    assert!(reg.services().await.is_ok());
}

#[tokio::test]
async fn with_the_heartbeat_off_nothing_is_sent() {
    let sent = Arc::new(AtomicU64::new(0));
    let silent = Arc::new(AtomicBool::new(false));
    let addr = relay(registry().await, silent.clone(), sent.clone()).await;
    let reg = Registry::open(&addr).await.unwrap();
    reg.set_heartbeat(Duration::ZERO);
    let mut events = reg.events().await.unwrap();
    // The event read goes out when the stream is first polled.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err()
    );
    let before = sent.load(Ordering::Relaxed);
    silent.store(true, Ordering::Relaxed);
    assert!(
        tokio::time::timeout(Duration::from_secs(2), events.next())
            .await
            .is_err()
    );
    assert_eq!(sent.load(Ordering::Relaxed), before);
}
