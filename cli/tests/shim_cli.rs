//! `registry serve` with its shim, and `registry shim --registry` in front of a separately
//! started server, each in its own process.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use common::within;
use process::registry;
use registries::client::{Attributes, Registry};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStderr};

/// Starts a command and reads its stderr until a line containing `want`.
async fn spawn_until(args: &[&str], want: &str) -> (Child, Lines<BufReader<ChildStderr>>, String) {
    let mut child = registry(args).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = within(err.next_line())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{args:?} ended before printing {want:?}"));
        if line.contains(want) {
            return (child, err, line);
        }
    }
}

/// The port after `key` in a line such as `registry: shim new tcp!127.0.0.1!1 find ...`.
fn port_after(line: &str, key: &str) -> u16 {
    let mut words = line.split_whitespace();
    words.find(|w| *w == key).expect(key);
    let addr = words.next().expect("address");
    addr.rsplit('!').next().unwrap().parse().unwrap()
}

/// Sends a find query and returns the reply.
async fn find(port: u16, query: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(query.as_bytes()).await.unwrap();
    let mut out = String::new();
    within(s.read_to_string(&mut out)).await.unwrap();
    out
}

/// Waits for `READY` on the event port and returns the connection.
async fn ready(port: u16) -> BufReader<TcpStream> {
    let mut r = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let mut line = String::new();
    within(r.read_line(&mut line)).await.unwrap();
    assert_eq!(line, "READY\n");
    r
}

async fn next_event(r: &mut BufReader<TcpStream>) {
    let mut line = String::new();
    within(r.read_line(&mut line)).await.unwrap();
    assert_eq!(line.len(), 9, "{line:?}");
}

#[tokio::test]
async fn serve_prints_ephemeral_shim_ports_for_port_zero() {
    let (_child, _err, line) = spawn_until(&["serve", "--listen", "tcp!127.0.0.1!0"], "shim").await;
    let (new, find_port, event) = (
        port_after(&line, "new"),
        port_after(&line, "find"),
        port_after(&line, "event"),
    );
    assert!(![new, find_port, event].contains(&6701), "{line}");
    let mut ev = ready(event).await;
    let mut reg = TcpStream::connect(("127.0.0.1", new)).await.unwrap();
    reg.write_all(b"tcp!svc!1 proto 'a b'\n").await.unwrap();
    next_event(&mut ev).await;
    assert_eq!(find(find_port, "\n").await, "tcp!svc!1 proto 'a b'\n");
    drop(reg);
    next_event(&mut ev).await;
    assert_eq!(find(find_port, "\n").await, "");
}

#[tokio::test]
async fn shim_command_fronts_a_separate_server() {
    let (mut server, _serr, line) = spawn_until(
        &["serve", "--listen", "tcp!127.0.0.1!0", "--no-shim"],
        "listening on",
    )
    .await;
    let addr = line.split_whitespace().last().unwrap().to_string();
    let (_shim, _shimerr, line) = spawn_until(
        &[
            "shim",
            "--registry",
            &addr,
            "--listen",
            "127.0.0.1",
            "--ports",
            "0,0,0",
        ],
        "shim new",
    )
    .await;
    let (new, find_port, event) = (
        port_after(&line, "new"),
        port_after(&line, "find"),
        port_after(&line, "event"),
    );
    let port: u16 = addr.rsplit('!').next().unwrap().parse().unwrap();
    let direct =
        Registry::connect_stream(TcpStream::connect(("127.0.0.1", port)).await.unwrap(), None)
            .await
            .unwrap();

    // Shim -> 9P.
    let mut ev = ready(event).await;
    let mut reg = TcpStream::connect(("127.0.0.1", new)).await.unwrap();
    reg.write_all(b"tcp!via!shim kind 'it''s'\n").await.unwrap();
    next_event(&mut ev).await;
    let seen = direct.find(&[("kind", "it's")]).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].addr, "tcp!via!shim");

    // 9P -> shim.
    let _held = direct
        .register("tcp!via!9p", &Attributes::new([("kind", "direct")]), false)
        .await
        .unwrap();
    assert_eq!(
        find(find_port, "kind direct\n").await,
        "tcp!via!9p kind direct\n"
    );

    // Losing the registry closes the registration's connection.
    server.kill().await.unwrap();
    let mut rest = Vec::new();
    within(reg.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn shim_help_has_examples() {
    let out = within(
        registry(&["shim", "--help"])
            .stdout(Stdio::piped())
            .output(),
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("--registry") && text.contains("Examples"),
        "{text}"
    );
}

#[tokio::test]
async fn serve_takes_the_shim_limits_from_its_command_line() {
    let args = [
        "serve",
        "--listen",
        "tcp!127.0.0.1!0",
        "--shim-idle-timeout",
        "0.2",
        "--shim-max-connections",
        "4",
    ];
    let (_serve, _err, line) = spawn_until(&args, "registry: shim").await;
    let mut idle = TcpStream::connect(("127.0.0.1", port_after(&line, "find")))
        .await
        .unwrap();
    let mut got = Vec::new();
    match within(idle.read_to_end(&mut got)).await {
        Ok(_) => assert!(got.is_empty(), "idle connection got {got:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}
