//! A `-f` database spread over several files (attrdb(6) `database=` entry with `file=` names):
//! the registry serves the static services of every file, in database order.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use process::Running;

use registries::registry::Server;
use registries::styx::{Client, OREAD};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;

/// Generous, only so that a broken server fails the test instead of hanging it.
const T: Duration = Duration::from_secs(30);

/// Reads `index` on a registry at `addr` (`host:port`).
async fn index_at(addr: &str) -> String {
    let client = Client::connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    let root = client.attach("alice", "").await.unwrap();
    let mut f = root.walk(&["index"]).await.unwrap();
    f.open(OREAD).await.unwrap();
    String::from_utf8(f.read_all().await.unwrap()).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn builder_loads_every_file_of_the_database_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.db");
    let one = dir.path().join("one.db");
    let two = dir.path().join("two.db");
    // Names are opened as written (relative ones against the current directory, as in Inferno),
    // so this test, which must not change directory, names them in full. The main file is listed
    // between the two others, where its entries go; a missing file is left out.
    write(
        &main,
        &format!(
            "database=\n\tfile={}\n\tfile={}\n\tfile={}\n\tfile={}\n\
             service=tcp!main!1 from=main\n",
            one.display(),
            main.display(),
            dir.path().join("missing.db").display(),
            two.display(),
        ),
    );
    write(
        &one,
        "service=tcp!one!1 from=one\nservice=tcp!one!2 from=one\n",
    );
    write(&two, "service=tcp!two!1 from=two\n");
    let server = tokio::time::timeout(
        T,
        Server::builder()
            .listen_str("tcp!127.0.0.1!0")
            .unwrap()
            .static_file(&main)
            .start(),
    )
    .await
    .unwrap()
    .unwrap();
    let addr = server.local_addrs()[0].socket_addr_string().unwrap();
    let text = tokio::time::timeout(T, index_at(&addr)).await.unwrap();
    assert_eq!(
        text,
        "tcp!one!1 from one\n\
         tcp!one!2 from one\n\
         tcp!main!1 from main\n\
         tcp!two!1 from two\n"
    );
    server.shutdown().await;
}

/// `registry serve -f conf/main.db`: relative `file=` names are opened from the process's current
/// directory, not from `conf/`, as Inferno's `Db.open` opens them.
#[tokio::test]
async fn serve_opens_relative_names_from_its_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["conf", "sub", "conf/sub"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    write(
        &dir.path().join("conf/main.db"),
        "database=\n\tfile=sub/extra.db\n\tfile=conf/main.db\nservice=tcp!main!1\n",
    );
    write(&dir.path().join("sub/extra.db"), "service=tcp!extra!1\n");
    write(
        &dir.path().join("conf/sub/extra.db"),
        "service=tcp!wrong!1\n",
    );
    let args = [
        "serve",
        "--listen",
        "tcp!127.0.0.1!0",
        "--no-shim",
        "-f",
        "conf/main.db",
    ];
    let (_serve, line) = Running::start_in(Some(dir.path()), &args, "listening on").await;
    let port = Running::port_of(&line);
    let text = tokio::time::timeout(T, index_at(&format!("127.0.0.1:{port}")))
        .await
        .unwrap();
    assert_eq!(text, "tcp!extra!1\ntcp!main!1\n");
}
