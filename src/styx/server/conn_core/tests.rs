//! The server core on its own: messages in as bytes, replies out as bytes, no sockets.

use super::*;
use crate::styx::msg::NOFID;

fn feed(core: &mut ServerCore, tag: u16, body: Body) {
    Msg { tag, body }.encode(core.input()).unwrap();
}

/// Every reply queued so far, decoded.
fn replies(core: &mut ServerCore) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut buf = core.output().split();
    while let Some(m) = decode_frame(&mut buf, u32::MAX).unwrap() {
        out.push(m);
    }
    out
}

fn rerror(tag: u16, ename: &str) -> Msg {
    Msg {
        tag,
        body: Body::Rerror {
            ename: ename.into(),
        },
    }
}

fn stat(fid: u32) -> Body {
    Body::Tstat { fid }
}

/// A request that may wait in the file system (an `event` read, say).
fn read(fid: u32) -> Body {
    Body::Tread {
        fid,
        offset: 0,
        count: 1,
    }
}

/// A core that has negotiated 9P2000 with msize 8192.
fn ready(max_outstanding: usize) -> ServerCore {
    let mut core = ServerCore::new(8192, max_outstanding);
    feed(
        &mut core,
        NOTAG,
        Body::Tversion {
            msize: 65536,
            version: "9P2000".into(),
        },
    );
    assert_eq!(core.next_action(), Ok(Some(Action::Reset)));
    assert_eq!(core.next_action(), Ok(None));
    core.finish_version();
    assert_eq!(
        replies(&mut core),
        [Msg {
            tag: NOTAG,
            body: Body::Rversion {
                msize: 8192,
                version: "9P2000".into()
            }
        }]
    );
    core
}

const NOTAG: u16 = 0xffff;

#[test]
fn requests_before_tversion_are_refused() {
    let mut core = ServerCore::new(8192, 4);
    feed(&mut core, 1, stat(0));
    feed(
        &mut core,
        2,
        Body::Tattach {
            fid: 0,
            afid: NOFID,
            uname: "u".into(),
            aname: String::new(),
        },
    );
    assert_eq!(core.next_action(), Ok(None));
    assert_eq!(
        replies(&mut core),
        [rerror(1, ENOVERSION), rerror(2, ENOVERSION)]
    );
}

#[test]
fn version_clamps_msize_and_refuses_small_ones() {
    let mut core = ready(4);
    assert_eq!(core.msize(), 8192);
    feed(
        &mut core,
        NOTAG,
        Body::Tversion {
            msize: 100,
            version: "9P2000".into(),
        },
    );
    assert_eq!(core.next_action(), Ok(Some(Action::Reset)));
    core.finish_version();
    assert_eq!(replies(&mut core), [rerror(NOTAG, EMSIZE)]);
    feed(
        &mut core,
        NOTAG,
        Body::Tversion {
            msize: 4096,
            version: "Styx99".into(),
        },
    );
    assert_eq!(core.next_action(), Ok(Some(Action::Reset)));
    core.finish_version();
    let r = replies(&mut core);
    assert_eq!(
        r[0].body,
        Body::Rversion {
            msize: 4096,
            version: "unknown".into()
        }
    );
}

#[test]
fn a_request_is_started_and_answered_once() {
    let mut core = ready(4);
    feed(&mut core, 7, stat(3));
    assert_eq!(
        core.next_action(),
        Ok(Some(Action::Start {
            tag: 7,
            body: stat(3)
        }))
    );
    assert!(!core.is_idle());
    core.complete(7, Err(FsError::from("bad fid")));
    core.complete(7, Err(FsError::from("again")));
    assert_eq!(replies(&mut core), [rerror(7, "bad fid")]);
    assert!(core.is_idle());
}

#[test]
fn duplicate_tags_are_refused_while_the_first_runs() {
    let mut core = ready(4);
    feed(&mut core, 5, stat(1));
    feed(&mut core, 5, stat(2));
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 5, .. }))
    ));
    assert_eq!(core.next_action(), Ok(None));
    assert_eq!(replies(&mut core), [rerror(5, EDUPTAG)]);
}

#[test]
fn a_flushed_request_is_cancelled_and_never_answered() {
    let mut core = ready(4);
    feed(&mut core, 1, stat(1));
    feed(&mut core, 2, Body::Tflush { oldtag: 1 });
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 1, .. }))
    ));
    assert_eq!(core.next_action(), Ok(Some(Action::Cancel { tag: 1 })));
    // The work finished anyway: its answer must not follow the Rflush.
    core.complete(1, Ok(Body::Rclunk));
    assert_eq!(
        replies(&mut core),
        [Msg {
            tag: 2,
            body: Body::Rflush
        }]
    );
    // A flush of a tag nobody uses is answered all the same.
    feed(&mut core, 3, Body::Tflush { oldtag: 99 });
    assert_eq!(core.next_action(), Ok(None));
    assert_eq!(replies(&mut core)[0].body, Body::Rflush);
}

#[test]
fn requests_beyond_the_limit_wait_then_are_refused_and_a_flush_always_gets_through() {
    let mut core = ready(1);
    feed(&mut core, 1, read(1));
    feed(&mut core, 2, read(2));
    feed(&mut core, 3, Body::Tflush { oldtag: 2 });
    feed(&mut core, 4, read(4));
    feed(&mut core, 5, read(5));
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 1, .. }))
    ));
    // 2 waited in the queue until its flush took it out; 4 waits in its place; 5 finds the
    // queue (one place) full and is refused at once. Reading never stops.
    assert_eq!(core.next_action(), Ok(None));
    assert!(core.wants_input());
    assert_eq!(core.take_refused(), 1);
    core.complete(1, Ok(Body::Rclunk));
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 4, .. }))
    ));
    let got = replies(&mut core);
    let tags: Vec<u16> = got.iter().map(|m| m.tag).collect();
    assert_eq!(tags, [3, 5, 1]);
    assert_eq!(got[0].body, Body::Rflush);
    assert_eq!(
        got[1].body,
        Body::Rerror {
            ename: "too many outstanding requests".into()
        }
    );
}

#[test]
fn a_tstat_starts_past_the_limit() {
    // The one place is taken by a read that waits; a heartbeat's Tstat is answered anyway.
    let mut core = ready(1);
    feed(&mut core, 1, read(1));
    feed(&mut core, 2, read(2));
    feed(&mut core, 3, stat(1));
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 1, .. }))
    ));
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 3, .. }))
    ));
    assert_eq!(core.next_action(), Ok(None));
    assert_eq!(core.take_refused(), 0);
}

#[test]
fn a_queued_request_flushed_is_simply_forgotten() {
    let mut core = ready(1);
    feed(&mut core, 1, read(1));
    feed(&mut core, 2, read(2));
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 1, .. }))
    ));
    assert_eq!(core.next_action(), Ok(None));
    core.complete(1, Ok(Body::Rclunk));
    // The queue has room again: the Tflush is read before 2 can start.
    feed(&mut core, 3, Body::Tflush { oldtag: 2 });
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 2, .. }))
    ));
    assert_eq!(core.next_action(), Ok(Some(Action::Cancel { tag: 2 })));
}

#[test]
fn tversion_forgets_the_old_session() {
    let mut core = ready(4);
    feed(&mut core, 1, stat(1));
    assert!(matches!(core.next_action(), Ok(Some(Action::Start { .. }))));
    feed(
        &mut core,
        NOTAG,
        Body::Tversion {
            msize: 8192,
            version: "9P2000".into(),
        },
    );
    feed(&mut core, 2, stat(2));
    assert_eq!(core.next_action(), Ok(Some(Action::Reset)));
    // Nothing is read until the reset is over.
    assert_eq!(core.next_action(), Ok(None));
    assert!(!core.wants_input());
    core.complete(1, Ok(Body::Rclunk));
    core.finish_version();
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 2, .. }))
    ));
    let r = replies(&mut core);
    assert_eq!(r.len(), 1);
    assert!(matches!(r[0].body, Body::Rversion { .. }));
}

#[test]
fn protocol_botches_end_the_connection() {
    let mut core = ready(4);
    feed(&mut core, 1, Body::Rclunk);
    assert!(core.next_action().is_err());

    let mut core = ready(4);
    core.input().extend_from_slice(&(1u32 << 30).to_le_bytes());
    assert!(core.next_action().is_err());
}

#[test]
fn a_message_arrives_in_pieces() {
    let mut core = ready(4);
    let mut whole = BytesMut::new();
    Msg {
        tag: 9,
        body: stat(1),
    }
    .encode(&mut whole)
    .unwrap();
    for (i, b) in whole.iter().enumerate() {
        assert_eq!(core.next_action(), Ok(None), "byte {i}");
        core.input().extend_from_slice(&[*b]);
        assert!(core.in_message());
    }
    assert!(matches!(
        core.next_action(),
        Ok(Some(Action::Start { tag: 9, .. }))
    ));
    assert!(!core.in_message());
    assert_eq!(core.decoded(), 2);
}

#[test]
fn a_reply_over_msize_becomes_an_error() {
    let mut core = ready(4);
    feed(&mut core, 1, stat(1));
    assert!(matches!(core.next_action(), Ok(Some(Action::Start { .. }))));
    let data = bytes::Bytes::from(vec![0u8; 9000]);
    core.complete(1, Ok(Body::Rread { data }));
    assert_eq!(replies(&mut core), [rerror(1, "Styx reply didn't fit")]);
}

#[test]
fn unread_output_stops_reading() {
    let mut core = ready(256);
    for tag in 0..100 {
        feed(&mut core, tag, stat(1));
    }
    let data = bytes::Bytes::from(vec![0u8; 8000]);
    for tag in 0..100u16 {
        assert!(matches!(core.next_action(), Ok(Some(Action::Start { .. }))));
        core.complete(tag, Ok(Body::Rread { data: data.clone() }));
        if !core.wants_input() {
            // 256 KiB of replies wait: the rest stays unread until the peer takes some.
            assert!(tag > 20);
            assert_eq!(core.next_action(), Ok(None));
            core.output().clear();
            assert!(core.wants_input());
            return;
        }
    }
    panic!("output never stopped the reading");
}

#[test]
fn the_fuzz_entry_point_holds_on_a_real_session() {
    let mut input = BytesMut::new();
    let mut put = |tag: u16, body: Body| Msg { tag, body }.encode(&mut input).unwrap();
    put(
        NOTAG,
        Body::Tversion {
            msize: 8192,
            version: "9P2000".into(),
        },
    );
    for tag in 0..20 {
        put(tag, stat(1));
        put(100 + tag, Body::Tflush { oldtag: tag });
    }
    for step in [1, 3, 7, 64, 4096] {
        fuzz_feed(&input, step);
    }
}
