//! Our 9P client against the independent asyncio 9P2000 server of the `aio9p` package (PyPI).

mod common;

use std::time::Duration;

use common::peers::{peer_python, peer_script};
use registries::styx::{Client, DMDIR, Error, ORDWR, OREAD};
use tokio::io::AsyncBufReadExt;

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn our_client_against_aio9p_server() {
    let Some(python) = peer_python("aio9p", "our_client_against_aio9p_server") else {
        return;
    };
    let mut child = tokio::process::Command::new(python)
        .arg(peer_script("aio9p_server.py"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(LONG, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("no PORT line");
    let port: u16 = line
        .strip_prefix("PORT ")
        .expect("PORT line")
        .trim()
        .parse()
        .unwrap();

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let c = tokio::time::timeout(LONG, Client::connect(stream))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.msize(), 8216);
    let root = c.attach("glenda", "").await.unwrap();

    // Create, write in chunks of msize − 24, read back on another fid.
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let mut f = root.try_clone().await.unwrap();
    f.create("file", 0o644, ORDWR).await.unwrap();
    assert_eq!(f.write(0, &data).await.unwrap(), data.len());
    assert_eq!(f.read_all().await.unwrap(), data);
    let st = f.stat().await.unwrap();
    assert_eq!((st.name.as_str(), st.length), ("file", data.len() as u64));
    let mut g = root.walk(&["file"]).await.unwrap();
    g.open(OREAD).await.unwrap();
    assert_eq!(g.read_all().await.unwrap(), data);

    // Many reads in flight on one connection, the same file open on two fids.
    let reads = (0..64u64).map(|i| {
        if i % 2 == 0 {
            f.read(i * 10, 10)
        } else {
            g.read(i * 10, 10)
        }
    });
    for (i, r) in futures_util::future::join_all(reads)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap().as_ref(), &data[i * 10..i * 10 + 10]);
    }

    // A subdirectory and a walk of two elements.
    let mut d = root.try_clone().await.unwrap();
    d.create("sub", DMDIR | 0o755, OREAD).await.unwrap();
    let mut s = root.walk(&["sub"]).await.unwrap();
    s.create("inner", 0o644, ORDWR).await.unwrap();
    s.write(0, b"inside").await.unwrap();
    let mut i = root.walk(&["sub", "inner"]).await.unwrap();
    i.open(OREAD).await.unwrap();
    assert_eq!(i.read_all().await.unwrap(), b"inside");

    assert_eq!(common::styx_checks::listing(&root).await, ["file", "sub"]);

    assert!(matches!(root.walk(&["nope"]).await, Err(Error::Remote(_))));

    // A read that blocks is flushed when its future is dropped; aio9p cancels it and answers
    // Rflush, after which the connection goes on.
    let mut b = root.try_clone().await.unwrap();
    b.create("block", 0o644, ORDWR).await.unwrap();
    for _ in 0..10 {
        let r = tokio::time::timeout(Duration::from_millis(20), b.read(0, 10)).await;
        assert!(r.is_err(), "block returned");
    }
    assert_eq!(g.read(0, 3).await.unwrap().as_ref(), &data[..3]);

    root.walk(&["file"]).await.unwrap().remove().await.unwrap();
    assert!(root.walk(&["file"]).await.is_err());
}
