//! The 9P server's limits against connections that do not do their part: a socket that never
//! sends Tversion and Tattach is closed at the handshake deadline, and the slot it held serves
//! the next client.

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
