//! The 9P server's limits against connections that do not do their part: a socket that never
//! sends Tversion and Tattach is closed at the handshake deadline, and the slot it held serves
//! the next client; at the connection cap a newcomer takes the place of the oldest connection
//! that has not attached, never of one that has.

mod common;

use registries::registry::Server;
use registries::styx::server::Limits;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn silent_sockets_are_closed_at_the_handshake_deadline_and_free_their_slots() {
    let limits = Limits {
        max_connections: 5,
        handshake_timeout: Some(Duration::from_millis(300)),
        ..Limits::default()
    };
    let server = common::registry::start_server(Server::new().with_limits(limits)).await;
    let addr = server.local_addrs()[0].to_string();
    let sock = server.local_addrs()[0].socket_addr_string().unwrap();

    // A client that attaches at once outlives the deadline.
    let early = registries::Registry::open(&addr).await.unwrap();

    // Four silent sockets take the other slots.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(&sock).await.unwrap());
    }
    // Each is closed by the server at the deadline.
    for s in &mut silent {
        let mut buf = [0u8; 16];
        let n = common::within(s.read(&mut buf)).await.unwrap_or(0);
        assert_eq!(n, 0, "a silent socket got data");
    }
    // The slots are free again: a new client is served, and the early one still is.
    let late = common::within(registries::Registry::open(&addr))
        .await
        .unwrap();
    late.services().await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    early.services().await.unwrap();
}

/// 50 silent sockets at `max_connections` 50, and a handshake deadline far off: a newcomer is
/// served at once, each one closing the oldest connection that has not attached.
#[tokio::test]
async fn at_the_cap_a_newcomer_closes_the_oldest_silent_socket() {
    let limits = Limits {
        max_connections: 50,
        handshake_timeout: Some(Duration::from_secs(600)),
        ..Limits::default()
    };
    let server = common::registry::start_server(Server::new().with_limits(limits)).await;
    let addr = server.local_addrs()[0].to_string();
    let sock = server.local_addrs()[0].socket_addr_string().unwrap();
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(&sock).await.unwrap());
    }
    // Long before the handshake deadline, three newcomers are served.
    let mut served = Vec::new();
    for _ in 0..3 {
        let reg = common::within_for(Duration::from_secs(20), registries::Registry::open(&addr))
            .await
            .unwrap();
        reg.services().await.unwrap();
        served.push(reg);
    }
    // The three oldest silent sockets were the ones closed.
    for s in &mut silent[..3] {
        let mut buf = [0u8; 16];
        let n = common::within(s.read(&mut buf)).await.unwrap_or(0);
        assert_eq!(n, 0, "an evicted socket got data");
    }
    for reg in &served {
        reg.services().await.unwrap();
    }
}

/// Attached connections are never closed to make room: at the cap a newcomer waits until one
/// of them ends.
#[tokio::test]
async fn attached_connections_are_never_evicted() {
    let limits = Limits {
        max_connections: 3,
        ..Limits::default()
    };
    let server = common::registry::start_server(Server::new().with_limits(limits)).await;
    let addr = server.local_addrs()[0].to_string();
    let mut held = Vec::new();
    for i in 0..3 {
        let reg = registries::Registry::open(&addr).await.unwrap();
        let svc = reg
            .register(
                &format!("tcp!h!{i}"),
                &registries::Attributes::new([("k", "v")]),
                false,
            )
            .await
            .unwrap();
        held.push((reg, svc));
    }
    let newcomer = tokio::spawn({
        let addr = addr.clone();
        async move { registries::Registry::open(&addr).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!newcomer.is_finished(), "a newcomer got in at the cap");
    for (reg, _) in &held {
        assert_eq!(reg.services().await.unwrap().len(), 3);
    }
    // One ends: the newcomer is served.
    held.pop();
    let reg = common::within(newcomer).await.unwrap().unwrap();
    common::within(async {
        while reg.services().await.unwrap().len() != 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Thousands of registrations dropped at once send as many Tclunks together, past the server's
/// limit of outstanding requests: none is refused, so every one of the services goes.
#[tokio::test]
async fn many_registrations_dropped_at_once_all_go() {
    let server = common::registry::start().await;
    let addr = server.local_addrs()[0].to_string();
    let reg = common::registry::drop_many_at_once(&addr, 2000, Duration::from_secs(30)).await;
    let attrs = registries::Attributes::new([("k", "v")]);
    // The connection that clunked them is still good.
    reg.register("tcp!h!again", &attrs, false).await.unwrap();
}
