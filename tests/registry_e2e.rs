//! End-to-end tests of the registry server over loopback, at the raw file level, with our styx
//! client (spec/registry.md §2–§6).

mod common;

use registries::registry::{RunningServer, Server};
use registries::styx::{Client, DMDIR, ORCLOSE, ORDWR, OREAD, OWRITE, QTDIR};
use std::time::Duration;

async fn start() -> RunningServer {
    common::registry::start().await
}

#[macro_use]
#[path = "semantics/suite.rs"]
mod suite;
use suite::*;

registry_semantics!();

#[tokio::test]
async fn static_services_and_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("services.db");
    std::fs::write(
        &db,
        "service=net!click!1234\n\tdescription='snapshot service' auth=none\n",
    )
    .unwrap();
    let sock = dir.path().join("reg.sock");
    let server = Server::builder()
        .listen_str(&format!("unix!{}", sock.display()))
        .unwrap()
        .static_file(&db)
        .start()
        .await
        .unwrap();
    let client = Client::connect(tokio::net::UnixStream::connect(&sock).await.unwrap())
        .await
        .unwrap();
    let root = client.attach("alice", "").await.unwrap();
    assert_eq!(
        index(&root).await,
        "net!click!1234 auth none description 'snapshot service'\n"
    );
    let f = root.walk(&["net!click!1234"]).await.unwrap();
    assert_eq!(f.stat().await.unwrap().uid, "registry");
    assert_eq!(remote(f.remove().await.unwrap_err()), "permission denied");
    server.shutdown().await;
}
