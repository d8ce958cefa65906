//! The client reads long `index` and `find` texts with reads in flight together; against a
//! server whose reads come back short in the middle of the text (as through a hop with a
//! smaller msize), the text must still arrive whole and in order.

use bytes::Bytes;
use registries::client::Registry;
use registries::styx::server::{ConnCtx, FileSystem, FsError, Limits, Opened, errors};
use registries::styx::{QTDIR, Qid};
use std::sync::Arc;

/// A registry root with `index` and `find` serving one fixed text; reads at offsets from 8192
/// to 16383 return at most 1000 bytes, so a window of reads ahead meets a short read first.
struct Chunky {
    text: Bytes,
}

#[derive(Clone, Copy, PartialEq)]
enum Node {
    Root,
    Index,
    Find,
}

fn qid(n: Node) -> Qid {
    match n {
        Node::Root => Qid {
            ty: QTDIR,
            version: 0,
            path: 0,
        },
        Node::Index => Qid {
            ty: 0,
            version: 0,
            path: 1,
        },
        Node::Find => Qid {
            ty: 0,
            version: 0,
            path: 2,
        },
    }
}

impl FileSystem for Chunky {
    type Fid = Node;
    async fn attach(&self, _: &ConnCtx, _: &str, _: &str) -> Result<(Node, Qid), FsError> {
        Ok((Node::Root, qid(Node::Root)))
    }
    async fn walk(&self, n: &Node, name: &str) -> Result<(Node, Qid), FsError> {
        match (*n, name) {
            (Node::Root, "index") => Ok((Node::Index, qid(Node::Index))),
            (Node::Root, "find") => Ok((Node::Find, qid(Node::Find))),
            _ => Err(errors::ENOTFOUND.into()),
        }
    }
    fn clone_fid(&self, n: &Node) -> Node {
        *n
    }
    async fn open(&self, n: &Node, _: u8) -> Result<Opened, FsError> {
        Ok(Opened {
            qid: qid(*n),
            iounit: 0,
        })
    }
    async fn read(&self, _: &Node, offset: u64, count: u32) -> Result<Bytes, FsError> {
        let count = if (8192..16384).contains(&offset) {
            count.min(1000)
        } else {
            count
        };
        let start = (offset as usize).min(self.text.len());
        let end = (start + count as usize).min(self.text.len());
        Ok(self.text.slice(start..end))
    }
    async fn write(&self, _: &Node, _: u64, data: Bytes) -> Result<u32, FsError> {
        Ok(data.len() as u32)
    }
}

#[tokio::test]
async fn long_texts_arrive_whole_through_short_reads() {
    let names: Vec<String> = (0..5000).map(|i| format!("tcp!host!{i}")).collect();
    let text: String = names.iter().map(|n| format!("{n} proto styx\n")).collect();
    assert!(text.len() > 100_000);
    let fs = Arc::new(Chunky {
        text: Bytes::from(text),
    });
    let (a, b) = tokio::io::duplex(1 << 16);
    let ctx = ConnCtx::default();
    tokio::spawn(registries::styx::server::serve_connection(
        b,
        fs,
        ctx,
        Limits::default(),
    ));
    let reg = Registry::connect_stream(a, Some("u")).await.unwrap();
    for _ in 0..2 {
        let all = reg.services().await.unwrap();
        let got: Vec<&str> = all.iter().map(|s| s.addr.as_str()).collect();
        assert_eq!(got, names);
        let found = reg.find(&[("proto", "styx")]).await.unwrap();
        assert_eq!(found.len(), names.len());
        assert_eq!(
            found.last().map(|s| s.addr.as_str()),
            names.last().map(|s| s.as_str())
        );
    }
}
