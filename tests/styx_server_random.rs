//! Random pipelined request streams against our server (a peer that does anything it likes
//! with fids and flushes): no panic, every request answered exactly once unless flushed, a
//! flushed request never answered after its Rflush.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::BytesMut;
use common::ramfs::RamFs;
use proptest::prelude::*;
use registries::styx::codec::decode_frame;
use registries::styx::server::{ConnCtx, Limits, serve_connection};
use registries::styx::{Body, Msg, NOFID, NOTAG, Stat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["hello", "dir", "x", "..", "new"]).prop_map(String::from)
}

fn request() -> impl Strategy<Value = Body> {
    let fid = 0u32..6;
    prop_oneof![
        (fid.clone(), name()).prop_map(|(fid, uname)| Body::Tattach {
            fid,
            afid: NOFID,
            uname,
            aname: String::new()
        }),
        (
            fid.clone(),
            fid.clone(),
            prop::collection::vec(name(), 0..4)
        )
            .prop_map(|(fid, newfid, wnames)| Body::Twalk {
                fid,
                newfid,
                wnames
            }),
        (
            fid.clone(),
            prop::sample::select(vec![0u8, 1, 2, 3, 0x10, 0x40, 0x41, 0x80])
        )
            .prop_map(|(fid, mode)| Body::Topen { fid, mode }),
        (
            fid.clone(),
            name(),
            prop::sample::select(vec![0o644u32, 0x8000_01ff]),
            0u8..3
        )
            .prop_map(|(fid, name, perm, mode)| Body::Tcreate {
                fid,
                name,
                perm,
                mode
            }),
        (fid.clone(), 0u64..20, 0u32..100).prop_map(|(fid, offset, count)| Body::Tread {
            fid,
            offset,
            count
        }),
        (fid.clone(), 0u64..20).prop_map(|(fid, offset)| Body::Twrite {
            fid,
            offset,
            data: "data".into()
        }),
        fid.clone().prop_map(|fid| Body::Tclunk { fid }),
        fid.clone().prop_map(|fid| Body::Tremove { fid }),
        fid.clone().prop_map(|fid| Body::Tstat { fid }),
        fid.prop_map(|fid| Body::Twstat {
            fid,
            stat: Stat::dont_touch()
        }),
        (0u16..60).prop_map(|oldtag| Body::Tflush { oldtag }),
    ]
}

async fn run(requests: Vec<Body>) {
    let (mut a, b) = tokio::io::duplex(1 << 20);
    let limits = Limits {
        max_fids: 4,
        max_outstanding: 8,
        ..Limits::default()
    };
    let server = tokio::spawn(serve_connection(
        b,
        RamFs::new(),
        ConnCtx::default(),
        limits,
    ));
    let mut out = BytesMut::new();
    Msg {
        tag: NOTAG,
        body: Body::Tversion {
            msize: 8216,
            version: "9P2000".into(),
        },
    }
    .encode(&mut out)
    .unwrap();
    let mut flushed: HashMap<u16, u16> = HashMap::new(); // flush tag -> old tag
    let mut sent = HashSet::new();
    for (i, body) in requests.into_iter().enumerate() {
        let tag = i as u16;
        // A flush names an earlier request (`oldtag` counts back); none before the first.
        let body = match body {
            Body::Tflush { oldtag: back } if tag > 0 => {
                let oldtag = tag - 1 - back % tag;
                flushed.insert(tag, oldtag);
                Body::Tflush { oldtag }
            }
            Body::Tflush { .. } => Body::Tstat { fid: 0 },
            other => other,
        };
        sent.insert(tag);
        Msg { tag, body }.encode(&mut out).unwrap();
    }
    a.write_all(&out).await.unwrap();
    let mut replied: HashSet<u16> = HashSet::new();
    let mut rflushed: HashSet<u16> = HashSet::new();
    let must: HashSet<u16> = sent
        .iter()
        .copied()
        .filter(|t| !flushed.values().any(|o| o == t))
        .collect();
    let mut buf = BytesMut::new();
    let got_all = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            while let Some(m) = decode_frame(&mut buf, 8216).unwrap() {
                if m.tag == NOTAG {
                    continue;
                }
                assert!(sent.contains(&m.tag), "reply to a tag never sent: {m:?}");
                assert!(replied.insert(m.tag), "tag {} answered twice", m.tag);
                assert!(
                    !rflushed.contains(&m.tag),
                    "tag {} answered after its Rflush",
                    m.tag
                );
                if let Some(old) = flushed.get(&m.tag) {
                    assert_eq!(m.body, Body::Rflush);
                    rflushed.insert(*old);
                }
            }
            if must.is_subset(&replied) {
                break;
            }
            if a.read_buf(&mut buf).await.unwrap() == 0 {
                panic!("server hung up");
            }
        }
    })
    .await;
    assert!(
        got_all.is_ok(),
        "requests left unanswered: {:?}",
        must.difference(&replied).collect::<Vec<_>>()
    );
    drop(a);
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_request_streams(requests in prop::collection::vec(request(), 1..60)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(requests));
    }
}
