//! Our registries(2) client replays the calls of the captured Limbo client
//! (spec/vectors/limbo-registries-9p.md) against a fake server that answers with the captured
//! replies, and every message it sends must equal the captured one, except the fields the
//! capture marks as varying (tags and fid numbers; fids must map one to one) and the reuse of
//! the `find` fid and the msize offered (see [`expected`]).

use registries::client::{Attributes, Registry};
use registries::styx::{Body, Msg};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const MSIZE: u32 = 8216;

/// (client_to_server, bytes) for each captured message, in wire order.
fn capture() -> Vec<(bool, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/spec/vectors/limbo-registries-9p.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("read the capture");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let field = |name: &str| {
                let key = format!("\"{name}\": \"");
                let start = l.find(&key).expect("field present") + key.len();
                let len = l[start..].find('"').expect("field closed");
                l[start..start + len].to_string()
            };
            let hex = field("hex");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (field("dir") == "client->server", bytes)
        })
        .collect()
}

/// The fid fields of a T-message: (fid, whether the message introduces it).
fn fids(b: &Body) -> Vec<(u32, bool)> {
    match b {
        Body::Tattach { fid, .. } => vec![(*fid, true)],
        Body::Twalk { fid, newfid, .. } => vec![(*fid, false), (*newfid, true)],
        Body::Topen { fid, .. }
        | Body::Tread { fid, .. }
        | Body::Twrite { fid, .. }
        | Body::Tclunk { fid }
        | Body::Tremove { fid } => vec![(*fid, false)],
        _ => vec![],
    }
}

/// `b` with every fid set to 0, for comparing the other fields.
fn zero_fids(b: &Body) -> Body {
    let mut b = b.clone();
    match &mut b {
        Body::Tattach { fid, .. }
        | Body::Topen { fid, .. }
        | Body::Tread { fid, .. }
        | Body::Twrite { fid, .. }
        | Body::Tclunk { fid }
        | Body::Tremove { fid } => *fid = 0,
        Body::Twalk { fid, newfid, .. } => {
            *fid = 0;
            *newfid = 0;
        }
        _ => {}
    }
    b
}

async fn read_msg(s: &mut DuplexStream) -> std::io::Result<Msg> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let size = u32::from_le_bytes(head) as usize;
    let mut buf = vec![0u8; size];
    buf[..4].copy_from_slice(&head);
    s.read_exact(&mut buf[4..]).await?;
    Msg::decode(buf.into(), MSIZE).map_err(std::io::Error::other)
}

/// The capture as request/reply pairs (Limbo has one request in flight at a time), rewritten
/// for the one way our client's traffic knowingly differs: it keeps the first `find` fid open
/// and reuses it. So a later find sends no walk, open or clunk, and writes and reads the first
/// find's fid; and that fid is clunked when the session ends, just before the `index` fid.
fn expected() -> Vec<(Msg, Msg)> {
    let msgs: Vec<(bool, Msg)> = capture()
        .into_iter()
        .map(|(c, b)| (c, Msg::decode(b.into(), MSIZE).expect("captured message")))
        .collect();
    let pairs: Vec<(Msg, Msg)> = msgs
        .chunks(2)
        .map(|p| match p {
            [(true, t), (false, r)] => (t.clone(), r.clone()),
            _ => panic!("the capture is not request/reply pairs"),
        })
        .collect();
    // Limbo reuses fid numbers after a clunk, so a find is followed from its walk to its clunk,
    // and the kept fid gets a number of its own that the capture never uses.
    const KEPT: u32 = 0xf1d0_f1d0;
    let (mut first, mut index, mut current) = (None, None, None);
    let mut out = Vec::new();
    let mut first_clunk = None;
    for (mut t, r) in pairs {
        match &mut t.body {
            // Our client offers 64 KiB of data a message where Limbo's offers 8 KiB; the
            // captured Rversion answers 8216, and from there every message must be Limbo's own
            // (reads of 8192 bytes included).
            Body::Tversion { msize, .. } => *msize = 65_536 + 24,
            Body::Twalk { newfid, wnames, .. } if wnames == &["index"] => index = Some(*newfid),
            Body::Twalk { newfid, wnames, .. } if wnames == &["find"] => {
                current = Some(*newfid);
                if first.is_some() {
                    continue;
                }
                first = Some(*newfid);
                *newfid = KEPT;
            }
            Body::Topen { fid, .. } if Some(*fid) == current => {
                if first_clunk.is_some() {
                    continue;
                }
                *fid = KEPT;
            }
            Body::Tclunk { fid } if Some(*fid) == current => {
                current = None;
                if first_clunk.is_none() {
                    *fid = KEPT;
                    first_clunk = Some((t, r));
                }
                continue;
            }
            Body::Tclunk { fid } if Some(*fid) == index => out.extend(first_clunk.take()),
            Body::Twrite { fid, .. } | Body::Tread { fid, .. } if Some(*fid) == current => {
                *fid = KEPT;
            }
            _ => {}
        }
        out.push((t, r));
    }
    out
}

/// Plays the server side of the expected traffic; returns the first difference, if any.
async fn fake_server(mut s: DuplexStream) -> Result<(), String> {
    let mut map: HashMap<u32, u32> = HashMap::new();
    let mut last_tag = 0;
    let script = expected()
        .into_iter()
        .flat_map(|(t, r)| [(true, t), (false, r)]);
    for (i, (from_client, want)) in script.enumerate() {
        if !from_client {
            let reply = Msg {
                tag: last_tag,
                body: want.body,
            };
            let out = reply.to_bytes().map_err(|e| e.to_string())?;
            s.write_all(&out).await.map_err(|e| e.to_string())?;
            continue;
        }
        let got = read_msg(&mut s)
            .await
            .map_err(|e| format!("message {}: {e}", i + 1))?;
        last_tag = got.tag;
        if zero_fids(&got.body) != zero_fids(&want.body) {
            return Err(format!(
                "message {}: got {:?}, want {:?}",
                i + 1,
                got.body,
                want.body
            ));
        }
        for ((w, new), (g, _)) in fids(&want.body).into_iter().zip(fids(&got.body)) {
            if new {
                map.insert(w, g);
            } else if map.get(&w) != Some(&g) {
                return Err(format!(
                    "message {}: fid {g} where capture fid {w} maps to {:?}",
                    i + 1,
                    map.get(&w)
                ));
            }
        }
    }
    // Then nothing more: the client closes the connection.
    match read_msg(&mut s).await {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
        Err(e) => Err(format!("after the capture: {e}")),
        Ok(m) => Err(format!("extra message after the capture: {:?}", m.body)),
    }
}

#[tokio::test]
async fn client_sends_what_limbo_sends() {
    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(fake_server(server_end));
    let calls = async {
        // Step 1.
        let reg = Registry::connect_stream(client_end, Some("root")).await?;
        // Steps 2 and 3.
        let a1 = Attributes::new([
            ("proto", "styx"),
            ("description", "it's a test"),
            ("empty", ""),
        ]);
        let mut r1 = reg.register("tcp!127.0.0.1!7001", &a1, false).await?;
        let a2 = Attributes::new([("proto", "styx"), ("auth", "infpk1")]);
        let r2 = reg.register("tcp!127.0.0.1!7002", &a2, true).await?;
        // Step 4: attributes come back in the registry's (reverse) order.
        let all = reg.services().await?;
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].attrs,
            Attributes::new([
                ("empty", ""),
                ("description", "it's a test"),
                ("proto", "styx")
            ])
        );
        assert_eq!(all[1].attrs.get("persist"), Some("1"));
        // Steps 5 to 7.
        assert_eq!(reg.find(&[("proto", "styx")]).await?.len(), 2);
        let authed = reg.find(&[("auth", "*")]).await?;
        assert_eq!(authed.len(), 1);
        assert_eq!(authed[0].addr, "tcp!127.0.0.1!7002");
        assert!(reg.find(&[("nosuch", "x")]).await?.is_empty());
        // Step 8.
        r1.update(&Attributes::new([("load", "5")])).await?;
        // Step 9.
        reg.unregister("tcp!127.0.0.1!7002").await?;
        // Step 10, then 11: r2's fid, the index, the root.
        r1.close().await?;
        drop(r2);
        drop(reg);
        Ok::<_, registries::client::Error>(())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        let r = calls.await;
        (r, server.await)
    })
    .await
    .expect("replay hung");
    let (calls, server) = outcome;
    server
        .expect("server task")
        .expect("traffic matches the capture");
    calls.expect("calls succeed");
}
