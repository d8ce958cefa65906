//! Replays the real Limbo registries(2) client traffic (spec/vectors/limbo-registries-9p.jsonl)
//! against our registry and compares every reply with the one Inferno's ndb/registry gave when
//! served directly (`alt_hex` where the exported capture differs).

mod common;

use registries::styx::{Body, Msg, Qid};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/spec/vectors/limbo-registries-9p.jsonl"
    );
    std::fs::read_to_string(path)
        .expect("vectors")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// Blanks the fields a record marks as varying, so that the rest compares exactly.
fn normalize(msg: Msg, vary: &serde_json::Map<String, Value>) -> Msg {
    let v = |k: &str| vary.contains_key(k);
    let tag = if v("tag") { 0 } else { msg.tag };
    let body = match msg.body {
        Body::Rattach { qid } if v("qid") => Body::Rattach {
            qid: Qid {
                ty: qid.ty,
                ..Qid::default()
            },
        },
        Body::Ropen {
            mut qid,
            mut iounit,
        } => {
            if v("iounit") {
                iounit = 0;
            }
            if v("qid.path") {
                qid.path = 0;
            }
            Body::Ropen { qid, iounit }
        }
        Body::Rwalk { mut wqids } => {
            for (i, q) in wqids.iter_mut().enumerate() {
                if v(&format!("wqid[{i}].path")) {
                    q.path = 0;
                }
                if v(&format!("wqid[{i}].vers")) {
                    q.version = 0;
                }
            }
            Body::Rwalk { wqids }
        }
        Body::Rread { .. } if v("data") => Body::Rread {
            data: Default::default(),
        },
        b => b,
    };
    Msg { tag, body }
}

async fn read_msg(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.expect("reply size");
    let size = u32::from_le_bytes(head) as usize;
    let mut buf = vec![0u8; size];
    buf[..4].copy_from_slice(&head);
    s.read_exact(&mut buf[4..]).await.expect("reply body");
    buf
}

#[tokio::test]
async fn limbo_client_traffic_replays_exactly() {
    let server = common::registry::start().await;
    let addr = server.local_addrs()[0].socket_addr_string().unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let records = vectors();
    assert_eq!(records.len(), 72);
    let mut compared = 0;
    for r in &records {
        let bytes = hex(r["hex"].as_str().unwrap());
        if r["dir"] == "client->server" {
            s.write_all(&bytes).await.unwrap();
            continue;
        }
        let expected = match r.get("alt_hex") {
            Some(alt) => hex(alt.as_str().unwrap()),
            None => bytes,
        };
        let ours = tokio::time::timeout(Duration::from_secs(10), read_msg(&mut s))
            .await
            .unwrap_or_else(|_| panic!("no reply to seq {}", r["reply_to"]));
        let vary = r["vary"].as_object().cloned().unwrap_or_default();
        let want = normalize(Msg::decode_slice(&expected, 8216).unwrap(), &vary);
        let got = normalize(Msg::decode_slice(&ours, 8216).unwrap(), &vary);
        assert_eq!(got, want, "seq {} ({})", r["seq"], r["type"]);
        // A fresh registry sees exactly the captured sequence, so even the varying fields agree.
        assert_eq!(
            ours, expected,
            "seq {} ({}) byte for byte",
            r["seq"], r["type"]
        );
        compared += 1;
    }
    assert_eq!(compared, 36);
    // The client closes; its non-persistent registrations are gone, 7002 was removed.
    drop(s);
    let reg = server.server().clone();
    for _ in 0..100 {
        if reg.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reg.is_empty());
    server.shutdown().await;
}
