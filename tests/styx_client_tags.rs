//! Our client's tag discipline, against a scripted server that sees every message:
//! a tag is never reused while outstanding, and a flushed tag only after its Rflush.

use std::collections::HashSet;

use bytes::BytesMut;
use registries::styx::codec::decode_frame;
use registries::styx::{Body, Client, Msg, Qid};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

/// Reads messages from the client and forwards them to the test, which answers them.
async fn pump(mut s: tokio::io::ReadHalf<DuplexStream>, out: mpsc::UnboundedSender<Msg>) {
    let mut buf = BytesMut::new();
    loop {
        while let Some(m) = decode_frame(&mut buf, 1 << 20).unwrap() {
            if out.send(m).is_err() {
                return;
            }
        }
        if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    }
}

async fn reply(w: &mut tokio::io::WriteHalf<DuplexStream>, tag: u16, body: Body) {
    w.write_all(&Msg { tag, body }.to_bytes().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn tags_are_not_reused_while_outstanding_or_before_rflush() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (r, mut w) = tokio::io::split(b);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(pump(r, tx));
    let server = async {
        let v = rx.recv().await.unwrap();
        assert!(matches!(v.body, Body::Tversion { .. }));
        reply(
            &mut w,
            v.tag,
            Body::Rversion {
                msize: 8216,
                version: "9P2000".into(),
            },
        )
        .await;
        (rx, w)
    };
    let (c, (mut rx, mut w)) = tokio::join!(Client::connect(a), server);
    let c = c.unwrap();

    // Attach so that we have a fid, answered by hand.
    let attach = tokio::spawn({
        let c = c.clone();
        async move { c.attach("u", "").await.map(std::mem::ManuallyDrop::new) }
    });
    let m = rx.recv().await.unwrap();
    reply(
        &mut w,
        m.tag,
        Body::Rattach {
            qid: Qid::default(),
        },
    )
    .await;
    let root = attach.await.unwrap().unwrap();

    // Request A is never answered.
    let c2 = c.clone();
    let _a = tokio::spawn(async move { c2.request(Body::Tstat { fid: 1 }).await });
    let held = rx.recv().await.unwrap().tag;
    // Request B is dropped: its Tflush is held back.
    let mut b = Box::pin(c.request(Body::Tread {
        fid: 1,
        offset: 0,
        count: 1,
    }));
    let _ = futures_util::poll!(&mut b);
    drop(b);
    let tread = rx.recv().await.unwrap();
    let flush = rx.recv().await.unwrap();
    assert_eq!(flush.body, Body::Tflush { oldtag: tread.tag });
    let reserved: HashSet<u16> = [held, tread.tag, flush.tag].into();

    // More requests than there are tags: none may use a reserved one.
    let mut seen_flushed_tag = false;
    for round in 0..2 {
        if round == 1 {
            reply(&mut w, flush.tag, Body::Rflush).await;
        }
        let mut done = 0;
        while done < 70_000 {
            let batch: Vec<_> = (0..500)
                .map(|_| {
                    let c = c.clone();
                    tokio::spawn(async move { c.request(Body::Tclunk { fid: 9 }).await })
                })
                .collect();
            for _ in 0..500 {
                let m = rx.recv().await.unwrap();
                if round == 0 {
                    assert!(!reserved.contains(&m.tag), "tag {} reused", m.tag);
                } else {
                    assert_ne!(m.tag, held, "outstanding tag reused");
                    seen_flushed_tag |= m.tag == tread.tag;
                }
                reply(&mut w, m.tag, Body::Rclunk).await;
            }
            for t in batch {
                assert_eq!(t.await.unwrap(), Ok(Body::Rclunk));
            }
            done += 500;
        }
    }
    assert!(
        seen_flushed_tag,
        "the flushed tag is free again after Rflush"
    );
    // `root` is a ManuallyDrop: the fid is deliberately never clunked, so the fake server
    // above never has to answer a Tclunk for it.
    let _ = root;
}
