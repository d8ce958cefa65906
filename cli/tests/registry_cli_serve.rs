//! `registry serve` as a process: it prints the addresses it bound and serves the registry there,
//! with the static services of `-f`.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use process::Running;

use registries::styx::{Client, OREAD, OWRITE};

#[tokio::test]
async fn serve_prints_its_address_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("static.db");
    std::fs::write(&db, "service=tcp!h!9 proto=styx\n").unwrap();
    let db = db.to_str().unwrap();
    let args = [
        "serve",
        "--listen",
        "tcp!127.0.0.1!0",
        "--no-shim",
        "-f",
        db,
    ];
    let (serve, line) = Running::start(&args, "listening on").await;
    // The address is the first thing it says.
    assert_eq!(serve.said().lines().next(), Some(line.as_str()));
    let port = Running::port_of(&line);
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
}
