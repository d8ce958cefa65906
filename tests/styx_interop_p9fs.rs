//! Our 9P client against the independent 9P2000 server of the `p9fs` package (PyPI).

mod common;

use std::time::Duration;

use common::peers::{peer_python, peer_script};
use registries::styx::{Client, Error, OREAD, OTRUNC, OWRITE};
use tokio::io::AsyncBufReadExt;

const LONG: Duration = Duration::from_secs(30);

/// Starts the p9fs server on `dir`; returns the child (killed on drop) and its port.
pub async fn start_p9fs(
    python: &std::path::Path,
    dir: &std::path::Path,
) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new(python)
        .arg(peer_script("p9fs_server.py"))
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(LONG, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("no PORT line");
    let port = line
        .strip_prefix("PORT ")
        .expect("PORT line")
        .trim()
        .parse()
        .unwrap();
    (child, port)
}

#[tokio::test]
async fn our_client_against_p9fs_server() {
    let Some(python) = peer_python("p9fs", "our_client_against_p9fs_server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), b"hello from disk\n").unwrap();
    let big: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(dir.path().join("big"), &big).unwrap();
    let deep: Vec<String> = (0..20).map(|i| format!("d{i}")).collect();
    let deep_dir = deep.iter().fold(dir.path().to_path_buf(), |p, n| p.join(n));
    std::fs::create_dir_all(&deep_dir).unwrap();
    std::fs::write(deep_dir.join("leaf"), b"bottom").unwrap();

    let (_child, port) = start_p9fs(&python, dir.path()).await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let c = tokio::time::timeout(LONG, Client::connect(stream))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.msize(), 8192);
    let root = c.attach("glenda", "").await.unwrap();
    assert!(root.qid().is_dir());

    let mut h = root.walk(&["hello"]).await.unwrap();
    h.open(OREAD).await.unwrap();
    assert_eq!(h.read_all().await.unwrap(), b"hello from disk\n");
    let st = h.stat().await.unwrap();
    assert_eq!((st.name.as_str(), st.length), ("hello", 16));

    // 21 elements: two walks of 16 and 5.
    let mut path = deep.clone();
    path.push("leaf".into());
    let mut leaf = root.walk(&path).await.unwrap();
    leaf.open(OREAD).await.unwrap();
    assert_eq!(leaf.read_all().await.unwrap(), b"bottom");

    // Reads chunked to the iounit; the same file open on several fids, many reads in flight.
    common::styx_checks::reads_on_four_fids(&root, "big", &big).await;

    // Create, chunked write, read back, truncate, remove.
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let mut n = root.try_clone().await.unwrap();
    n.create("made", 0o644, OWRITE).await.unwrap();
    assert_eq!(n.write(0, &data).await.unwrap(), data.len());
    n.clunk().await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("made")).unwrap(), data);
    let mut r = root.walk(&["made"]).await.unwrap();
    r.open(OREAD).await.unwrap();
    assert_eq!(r.read_all().await.unwrap(), data);
    drop(r);
    let mut t = root.walk(&["made"]).await.unwrap();
    t.open(OWRITE | OTRUNC).await.unwrap();
    t.clunk().await.unwrap();
    assert_eq!(std::fs::metadata(dir.path().join("made")).unwrap().len(), 0);
    root.walk(&["made"]).await.unwrap().remove().await.unwrap();
    assert!(!dir.path().join("made").exists());

    // Its error text reaches us verbatim.
    assert_eq!(
        root.walk(&["nope"]).await.unwrap_err(),
        Error::Remote("file not found".into())
    );

    assert_eq!(
        common::styx_checks::listing(&root).await,
        ["big", "d0", "hello"]
    );

    // Requests dropped before their reply are flushed; the connection stays usable.
    common::styx_checks::drop_reads_after_one_poll(&h, 50).await;
    assert_eq!(h.read(0, 5).await.unwrap().as_ref(), b"hello");
}
