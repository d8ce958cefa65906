//! The `event` file on the wire (spec/registry.md §5): a held read, `concurrent read for event fid`,
//! Tflush cancelling the held read (its reply is never sent), and the counter captured at open.

mod common;

use registries::styx::{Body, Msg, NOFID, NOTAG, OREAD, OWRITE};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Raw(TcpStream);

impl Raw {
    async fn send(&mut self, tag: u16, body: Body) {
        let b = Msg { tag, body }.to_bytes().unwrap();
        self.0.write_all(&b).await.unwrap();
    }

    async fn recv(&mut self) -> Msg {
        let mut head = [0u8; 4];
        self.0.read_exact(&mut head).await.unwrap();
        let size = u32::from_le_bytes(head) as usize;
        let mut buf = vec![0u8; size];
        buf[..4].copy_from_slice(&head);
        self.0.read_exact(&mut buf[4..]).await.unwrap();
        Msg::decode_slice(&buf, 8216).unwrap()
    }

    async fn rpc(&mut self, tag: u16, body: Body) -> Body {
        self.send(tag, body).await;
        let m = tokio::time::timeout(Duration::from_secs(10), self.recv())
            .await
            .unwrap();
        assert_eq!(m.tag, tag);
        m.body
    }

    async fn open(&mut self, fid: u32, name: &str, mode: u8) {
        let walk = Body::Twalk {
            fid: 1,
            newfid: fid,
            wnames: vec![name.into()],
        };
        assert!(matches!(self.rpc(1, walk).await, Body::Rwalk { .. }));
        assert!(matches!(
            self.rpc(1, Body::Topen { fid, mode }).await,
            Body::Ropen { .. }
        ));
    }
}

async fn connect(addr: &str, user: &str) -> Raw {
    let mut raw = Raw(TcpStream::connect(addr).await.unwrap());
    let v = Body::Tversion {
        msize: 8216,
        version: "9P2000".into(),
    };
    assert!(matches!(raw.rpc(NOTAG, v).await, Body::Rversion { .. }));
    let a = Body::Tattach {
        fid: 1,
        afid: NOFID,
        uname: user.into(),
        aname: String::new(),
    };
    assert!(matches!(raw.rpc(1, a).await, Body::Rattach { .. }));
    raw
}

#[tokio::test]
async fn held_read_concurrent_read_and_flush() {
    let server = common::registry::start().await;
    let addr = server.local_addrs()[0].socket_addr_string().unwrap();
    let mut w = connect(&addr, "watcher").await;
    let mut r = connect(&addr, "alice").await;
    w.open(2, "event", OREAD).await;
    // A change after open is reported by the first read, even though nothing read before.
    r.open(2, "new", OWRITE).await;
    let write = Body::Twrite {
        fid: 2,
        offset: 0,
        data: "tcp!h!1".into(),
    };
    assert!(matches!(r.rpc(1, write).await, Body::Rwrite { count: 7 }));
    let read = |tag| {
        (
            tag,
            Body::Tread {
                fid: 2,
                offset: 0,
                count: 8192,
            },
        )
    };
    let (t, b) = read(10);
    assert_eq!(
        w.rpc(t, b).await,
        Body::Rread {
            data: "00000001\n".into()
        }
    );
    // Held read (tag 11); a second read on the fid fails at once.
    let (t, b) = read(11);
    w.send(t, b).await;
    let (t, b) = read(12);
    assert_eq!(
        w.rpc(t, b).await,
        Body::Rerror {
            ename: "concurrent read for event fid".into()
        }
    );
    // Flush the held read: Rflush, and tag 11 is never answered, even after a change.
    assert_eq!(w.rpc(13, Body::Tflush { oldtag: 11 }).await, Body::Rflush);
    let write = Body::Twrite {
        fid: 2,
        offset: 0,
        data: "a b".into(),
    };
    assert!(matches!(r.rpc(1, write).await, Body::Rwrite { .. }));
    // The next read reports the change at once; had tag 11 been answered, it would come first.
    let (t, b) = read(14);
    w.send(t, b).await;
    let m = tokio::time::timeout(Duration::from_secs(10), w.recv())
        .await
        .unwrap();
    assert_eq!(
        (m.tag, m.body),
        (
            14,
            Body::Rread {
                data: "00000002\n".into()
            }
        )
    );
    // Other files keep answering while a read is held.
    let (t, b) = read(15);
    w.send(t, b).await;
    w.open(3, "index", OREAD).await;
    let idx = w
        .rpc(
            16,
            Body::Tread {
                fid: 3,
                offset: 0,
                count: 8192,
            },
        )
        .await;
    assert_eq!(
        idx,
        Body::Rread {
            data: "tcp!h!1 a b\n".into()
        }
    );
    // Clunking the creator fid removes the service: the held read (tag 15) is answered.
    assert_eq!(r.rpc(1, Body::Tclunk { fid: 2 }).await, Body::Rclunk);
    let m = tokio::time::timeout(Duration::from_secs(10), w.recv())
        .await
        .unwrap();
    assert_eq!(
        (m.tag, m.body),
        (
            15,
            Body::Rread {
                data: "00000003\n".into()
            }
        )
    );
    server.shutdown().await;
}
