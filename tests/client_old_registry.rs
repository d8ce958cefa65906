//! Against an older Inferno registry, whose `event` file answers reads with `not implemented
//! yet`, `events()` and `Monitor` fail clearly instead of hanging or misreading.

use futures_util::StreamExt;
use registries::client::{Error, Monitor, Registry};
use registries::styx::{Body, Msg, Qid};
use std::collections::HashSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A scripted registry: an empty `index` and `find`, and an `event` that cannot be read.
async fn old_registry(mut s: DuplexStream) {
    let mut event_fids = HashSet::new();
    let qid = |path| Qid {
        ty: 0,
        version: 0,
        path,
    };
    loop {
        let mut head = [0u8; 4];
        if s.read_exact(&mut head).await.is_err() {
            return;
        }
        let size = u32::from_le_bytes(head) as usize;
        let mut buf = vec![0u8; size];
        buf[..4].copy_from_slice(&head);
        if s.read_exact(&mut buf[4..]).await.is_err() {
            return;
        }
        let Ok(msg) = Msg::decode(buf.into(), 8216) else {
            return;
        };
        let body = match msg.body {
            Body::Tversion { msize, version } => Body::Rversion { msize, version },
            Body::Tattach { .. } => Body::Rattach {
                qid: Qid {
                    ty: 0x80,
                    version: 0,
                    path: 0,
                },
            },
            Body::Twalk { newfid, wnames, .. } => {
                if wnames.first().map(String::as_str) == Some("event") {
                    event_fids.insert(newfid);
                }
                Body::Rwalk {
                    wqids: wnames.iter().map(|_| qid(3)).collect(),
                }
            }
            Body::Topen { .. } => Body::Ropen {
                qid: qid(3),
                iounit: 0,
            },
            Body::Tread { fid, .. } if event_fids.contains(&fid) => Body::Rerror {
                ename: "not implemented yet".into(),
            },
            Body::Tread { .. } => Body::Rread {
                data: Default::default(),
            },
            Body::Twrite { data, .. } => Body::Rwrite {
                count: data.len() as u32,
            },
            Body::Tclunk { fid } => {
                event_fids.remove(&fid);
                Body::Rclunk
            }
            Body::Tflush { .. } => Body::Rflush,
            _ => Body::Rerror {
                ename: "unexpected".into(),
            },
        };
        let reply = Msg { tag: msg.tag, body }.to_bytes().unwrap();
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

async fn connect() -> Registry {
    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    tokio::spawn(old_registry(server_end));
    Registry::connect_stream(client_end, Some("me"))
        .await
        .unwrap()
}

#[tokio::test]
async fn events_fail_clearly() {
    let reg = connect().await;
    let mut events = reg.events().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("no hang");
    let e = first.expect("an item").unwrap_err();
    assert!(
        matches!(&e, Error::NoEvents(t) if t == "not implemented yet"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "registry does not support events: not implemented yet"
    );
    assert!(
        events.next().await.is_none(),
        "the stream ends after the error"
    );

    let none: [(&str, &str); 0] = [];
    let mut m = Monitor::new(&reg, &none).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), m.next())
        .await
        .expect("no hang")
        .expect("an item")
        .unwrap_err();
    assert!(matches!(e, Error::NoEvents(_)), "{e}");
}
