//! `registry serve` as a process: it prints the addresses it bound and serves the registry there,
//! with the static services of `-f`.

use registries::styx::{Client, OREAD, OWRITE};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn serve_prints_its_address_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("static.db");
    std::fs::write(&db, "service=tcp!h!9 proto=styx\n").unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["serve", "--listen", "tcp!127.0.0.1!0", "--no-shim", "-f"])
        .arg(&db)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line.strip_prefix("registry: listening on ").expect(&line);
    let port = addr.rsplit('!').next().unwrap();
    let stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let client = Client::connect(stream).await.unwrap();
    let root = client.attach("alice", "").await.unwrap();
    let mut new = root.walk(&["new"]).await.unwrap();
    new.open(OWRITE).await.unwrap();
    new.write(0, b"tcp!h!1 a b").await.unwrap();
    let mut idx = root.walk(&["index"]).await.unwrap();
    idx.open(OREAD).await.unwrap();
    let text = String::from_utf8(idx.read_all().await.unwrap()).unwrap();
    assert_eq!(text, "tcp!h!9 proto styx\ntcp!h!1 a b\n");
    child.kill().await.unwrap();
}
