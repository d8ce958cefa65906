//! The client's pure core driven against a scripted, simulated server: no sockets, no tasks,
//! no clock, every run the same. Checks the tag discipline (never reused while outstanding;
//! a flushed tag only after its Rflush), the flush races, fid cleanup and connection loss.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use proptest::prelude::*;
use registries::styx::client_core::{Cancel, Cleanup, ClientCore, Event, RequestId, io_size};
use registries::styx::{Body, Error, Msg, NOTAG};

const MSIZE: u32 = 8216;

/// A server that sees every message the core sends, checks the client keeps the rules, and
/// answers when the test says so (in any order). Flush(5): answering a Tflush discards the
/// flushed request if it is still unanswered.
#[derive(Default)]
struct Server {
    /// Requests received and not yet answered, by tag.
    inflight: BTreeMap<u16, Body>,
    /// Tags named by a Tflush not yet answered: the client must not reuse them.
    flushing: BTreeSet<u16>,
    /// Fids the server knows.
    fids: BTreeSet<u32>,
    /// Every message received, in order.
    log: Vec<Msg>,
}

impl Server {
    fn receive(&mut self, bytes: Bytes) {
        let m = Msg::decode(bytes, MSIZE).expect("client sent a bad message");
        assert_ne!(m.tag, NOTAG);
        assert!(
            !self.inflight.contains_key(&m.tag),
            "tag {} reused while outstanding",
            m.tag
        );
        assert!(
            !self.flushing.contains(&m.tag),
            "tag {} reused before its Rflush",
            m.tag
        );
        if let Body::Tflush { oldtag } = m.body {
            self.flushing.insert(oldtag);
        }
        self.inflight.insert(m.tag, m.body.clone());
        self.log.push(m);
    }

    /// Answers the request under `tag` the way a well-behaved server would.
    fn answer(&mut self, tag: u16) -> Msg {
        let body = self
            .inflight
            .remove(&tag)
            .expect("answering an unknown tag");
        let reply = match body {
            Body::Tflush { oldtag } => {
                self.flushing.remove(&oldtag);
                if let Some(Body::Tflush { .. }) = self.inflight.get(&oldtag) {
                    panic!("client flushed a flush");
                }
                // The flushed request, if still here, never happens.
                self.inflight.remove(&oldtag);
                Body::Rflush
            }
            Body::Twalk { newfid, .. } => {
                assert!(self.fids.insert(newfid), "walk to fid {newfid} in use");
                Body::Rwalk { wqids: vec![] }
            }
            Body::Tclunk { fid } => {
                assert!(self.fids.remove(&fid), "clunk of unknown fid {fid}");
                Body::Rclunk
            }
            Body::Tread { offset, .. } => Body::Rread {
                data: Bytes::from(offset.to_be_bytes().to_vec()),
            },
            Body::Tstat { .. } => Body::Rerror {
                ename: "no stat".into(),
            },
            other => panic!("unexpected request {}", other.name()),
        };
        Msg { tag, body: reply }
    }
}

/// What became of one waiter.
#[derive(Clone, Debug, PartialEq)]
enum Fate {
    Waiting,
    Cancelled,
    Replied(Result<Body, Error>),
    Failed,
}

/// A core, its server and the waiters' bookkeeping.
struct Sim {
    core: ClientCore<u64>,
    server: Server,
    next_waiter: u64,
    waiters: HashMap<u64, (RequestId, Cleanup, Fate)>,
    /// Waiters that drop their reply unread (as a dropped future whose reply is already in
    /// its channel).
    unread: BTreeSet<u64>,
    freed: Vec<u16>,
}

impl Sim {
    fn new() -> Sim {
        Sim::with_core(ClientCore::new(MSIZE))
    }

    fn with_core(core: ClientCore<u64>) -> Sim {
        Sim {
            core,
            server: Server::default(),
            next_waiter: 0,
            waiters: HashMap::new(),
            unread: BTreeSet::new(),
            freed: Vec::new(),
        }
    }

    /// Moves everything the core queued to the server, and hands out its events.
    fn pump(&mut self) {
        while let Some(b) = self.core.poll_transmit() {
            self.server.receive(b);
        }
        while let Some(ev) = self.core.poll_event() {
            match ev {
                Event::Reply { waiter, result } => {
                    let (_, cleanup, fate) = self.waiters.get_mut(&waiter).expect("unknown waiter");
                    assert_eq!(
                        *fate,
                        Fate::Waiting,
                        "waiter {waiter} answered twice or late"
                    );
                    if self.unread.contains(&waiter) {
                        self.core.reply_unread(*cleanup, result.is_ok());
                    } else if let (Ok(Body::Rwalk { .. }), Cleanup::NewFid(fid)) =
                        (&result, cleanup)
                    {
                        // The caller got its fid, used it, and dropped it.
                        self.core.clunk_background(*fid);
                    }
                    *fate = Fate::Replied(result);
                }
                Event::TagFreed(t) => self.freed.push(t),
                Event::UnknownTag(t) => panic!("unknown tag {t}"),
            }
        }
        // Clunks queued above.
        while let Some(b) = self.core.poll_transmit() {
            self.server.receive(b);
        }
    }

    fn start(&mut self, body: Body, cleanup: Cleanup) -> u64 {
        let w = self.next_waiter;
        self.next_waiter += 1;
        let id = self.core.start_request(body, w).expect("start");
        self.waiters.insert(w, (id, cleanup, Fate::Waiting));
        self.pump();
        w
    }

    fn read(&mut self) -> u64 {
        let w = self.next_waiter;
        self.start(
            Body::Tread {
                fid: 0,
                offset: w,
                count: 8,
            },
            Cleanup::None,
        )
    }

    fn walk(&mut self) -> u64 {
        let fid = self.core.alloc_fid().expect("fid");
        let body = Body::Twalk {
            fid: 0,
            newfid: fid,
            wnames: vec![],
        };
        self.start(body, Cleanup::NewFid(fid))
    }

    fn cancel(&mut self, w: u64) -> Cancel {
        let (id, cleanup, fate) = self.waiters.get_mut(&w).expect("waiter");
        let (id, cleanup) = (*id, *cleanup);
        let r = self.core.cancel(id, cleanup);
        if r == Cancel::Flushing {
            assert_eq!(*fate, Fate::Waiting);
            *fate = Fate::Cancelled;
        }
        self.pump();
        r
    }

    fn answer(&mut self, tag: u16) {
        let m = self.server.answer(tag);
        self.core.handle_incoming(m);
        self.pump();
    }

    fn tag(&self, w: u64) -> u16 {
        self.waiters[&w].0.tag()
    }

    fn fate(&self, w: u64) -> Fate {
        self.waiters[&w].2.clone()
    }

    /// The server answers everything, oldest tag first, until nothing is left.
    fn drain(&mut self) {
        while let Some(&tag) = self.server.inflight.keys().next() {
            self.answer(tag);
        }
    }
}

#[test]
fn tags_unique_while_outstanding() {
    let mut s = Sim::new();
    let ws: Vec<u64> = (0..100).map(|_| s.read()).collect();
    let tags: BTreeSet<u16> = ws.iter().map(|w| s.tag(*w)).collect();
    assert_eq!(tags.len(), 100);
    // Answer every other one; new requests never take a tag still outstanding (the server
    // asserts it on receipt).
    for w in ws.iter().step_by(2) {
        s.answer(s.tag(*w));
    }
    for _ in 0..200 {
        s.read();
    }
    s.drain();
    assert_eq!(s.core.outstanding(), 0);
    for w in 0..s.next_waiter {
        assert_eq!(
            s.fate(w),
            Fate::Replied(Ok(Body::Rread {
                data: Bytes::from(w.to_be_bytes().to_vec())
            }))
        );
    }
}

#[test]
fn cancel_sends_tflush_after_the_request_and_frees_the_tag_on_rflush() {
    let mut s = Sim::new();
    let w = s.read();
    let tag = s.tag(w);
    assert_eq!(s.cancel(w), Cancel::Flushing);
    let log: Vec<&Body> = s.server.log.iter().map(|m| &m.body).collect();
    assert!(matches!(log[0], Body::Tread { .. }));
    assert_eq!(*log[1], Body::Tflush { oldtag: tag });
    let flush_tag = s.server.log[1].tag;
    assert!(s.core.is_outstanding(tag));
    // A second cancel is a no-op.
    assert_eq!(s.cancel(w), Cancel::NotOutstanding);
    assert_eq!(s.server.log.len(), 2);
    s.answer(flush_tag);
    assert!(!s.core.is_outstanding(tag));
    assert_eq!(s.freed, vec![flush_tag, tag]);
    assert_eq!(s.fate(w), Fate::Cancelled);
    assert_eq!(s.core.outstanding(), 0);
}

#[test]
fn reply_racing_a_flush_is_not_delivered_and_tag_waits_for_rflush() {
    let mut s = Sim::new();
    let w = s.read();
    let tag = s.tag(w);
    s.cancel(w);
    let flush_tag = s.server.log[1].tag;
    // The server answered the read before it saw the Tflush.
    s.answer(tag);
    assert_eq!(
        s.fate(w),
        Fate::Cancelled,
        "reply reached a cancelled waiter"
    );
    assert!(s.core.is_outstanding(tag), "tag freed before Rflush");
    assert!(s.freed.is_empty());
    // Until the Rflush, new requests avoid the tag (the server checks).
    for _ in 0..70_000u32.min(u16::MAX as u32 - 3) {
        let v = s.read();
        assert_ne!(s.tag(v), tag);
        s.answer(s.tag(v));
    }
    s.answer(flush_tag);
    assert!(!s.core.is_outstanding(tag));
    assert_eq!(s.core.outstanding(), 0);
}

#[test]
fn walk_cancelled_before_it_happened_frees_the_fid() {
    let mut s = Sim::new();
    let w = s.walk();
    let Cleanup::NewFid(fid) = s.waiters[&w].1 else {
        panic!()
    };
    s.cancel(w);
    let flush_tag = s.server.log[1].tag;
    s.answer(flush_tag); // the walk is discarded unanswered
    assert!(s.server.fids.is_empty());
    assert_eq!(s.core.alloc_fid().unwrap(), fid, "fid not reusable");
}

#[test]
fn walk_that_raced_its_flush_is_clunked_and_fid_reused_only_after_rclunk() {
    let mut s = Sim::new();
    let w = s.walk();
    let Cleanup::NewFid(fid) = s.waiters[&w].1 else {
        panic!()
    };
    let walk_tag = s.tag(w);
    s.cancel(w);
    let flush_tag = s.server.log[1].tag;
    s.answer(walk_tag); // the walk happened
    assert_eq!(s.server.fids, BTreeSet::from([fid]));
    // The core clunks the fid it no longer wants.
    let clunk = s.server.log.last().unwrap().clone();
    assert_eq!(clunk.body, Body::Tclunk { fid });
    assert_ne!(s.core.alloc_fid().unwrap(), fid, "fid reused before Rclunk");
    s.answer(clunk.tag);
    s.answer(flush_tag);
    assert!(s.server.fids.is_empty());
    assert_eq!(s.core.alloc_fid().unwrap(), fid);
    assert_eq!(s.core.outstanding(), 0);
}

#[test]
fn clunk_flushed_before_it_happened_is_resent() {
    let mut s = Sim::new();
    let w = s.walk();
    s.answer(s.tag(w));
    // The walk's reply was read: the test's pump clunked the fid in the background.
    let clunk = s.server.log.last().unwrap().clone();
    s.answer(clunk.tag);
    // Now an explicit clunk, abandoned and flushed before the server acted.
    let fid = s.core.alloc_fid().unwrap();
    s.server.fids.insert(fid);
    let c = s.start(Body::Tclunk { fid }, Cleanup::EndsFid(fid));
    s.cancel(c);
    let flush_tag = s.server.log.last().unwrap().tag;
    s.answer(flush_tag);
    let again = s.server.log.last().unwrap().clone();
    assert_eq!(again.body, Body::Tclunk { fid });
    s.answer(again.tag);
    assert!(s.server.fids.is_empty());
    assert_eq!(s.core.outstanding(), 0);
}

#[test]
fn unread_reply_of_a_walk_is_undone() {
    let mut s = Sim::new();
    let fid = s.core.alloc_fid().unwrap();
    let w = s.next_waiter;
    s.unread.insert(w);
    s.start(
        Body::Twalk {
            fid: 0,
            newfid: fid,
            wnames: vec![],
        },
        Cleanup::NewFid(fid),
    );
    s.answer(s.tag(w));
    // A cancel after the reply was handed out finds nothing to flush.
    assert_eq!(s.cancel(w), Cancel::NotOutstanding);
    s.drain();
    assert!(s.server.fids.is_empty());
    assert_eq!(s.core.alloc_fid().unwrap(), fid);
}

#[test]
fn connection_loss_fails_every_waiter_and_later_requests() {
    let mut s = Sim::new();
    let ws: Vec<u64> = (0..10).map(|_| s.read()).collect();
    s.cancel(ws[3]);
    s.answer(s.tag(ws[5]));
    let failed = s.core.connection_lost("eof".into());
    let expect: Vec<u64> = ws.iter().copied().filter(|w| *w != 3 && *w != 5).collect();
    assert_eq!(failed, expect);
    assert_eq!(s.core.outstanding(), 0);
    assert_eq!(s.core.closed(), Some("eof"));
    assert!(s.core.connection_lost("second".into()).is_empty());
    assert_eq!(s.core.closed(), Some("eof"));
    let r = s.core.start_request(Body::Tclunk { fid: 1 }, 99);
    assert_eq!(r, Err(Error::Disconnected("eof".into())));
    s.core.clunk_background(1);
    assert!(s.core.poll_transmit().is_none());
}

#[test]
fn unknown_tag_is_reported_and_ignored() {
    let mut c: ClientCore<u64> = ClientCore::new(MSIZE);
    c.handle_incoming(Msg {
        tag: 7,
        body: Body::Rclunk,
    });
    assert_eq!(c.poll_event(), Some(Event::UnknownTag(7)));
    assert_eq!(c.poll_event(), None);
}

#[test]
fn rerror_becomes_remote() {
    let mut s = Sim::new();
    let w = s.start(Body::Tstat { fid: 0 }, Cleanup::None);
    s.answer(s.tag(w));
    assert_eq!(
        s.fate(w),
        Fate::Replied(Err(Error::Remote("no stat".into())))
    );
}

#[test]
fn msize_limits_requests_and_io() {
    let mut c: ClientCore<u64> = ClientCore::new(128);
    let big = Body::Twrite {
        fid: 1,
        offset: 0,
        data: Bytes::from(vec![0u8; 128]),
    };
    assert!(matches!(c.start_request(big, 1), Err(Error::TooBig(_))));
    assert_eq!(c.outstanding(), 0, "a refused request holds no tag");
    let fits = Body::Twrite {
        fid: 1,
        offset: 0,
        data: Bytes::from(vec![0u8; io_size(128, 0) as usize]),
    };
    assert!(c.start_request(fits, 2).is_ok());
    let sent = c.poll_transmit().map_or(0, |b| b.len());
    assert!(sent > 100 && sent <= 128, "{sent}");
}

#[test]
fn all_tags_in_use_gives_no_tags() {
    let mut c: ClientCore<u32> = ClientCore::new(MSIZE);
    for i in 0..u32::from(u16::MAX) {
        c.start_request(Body::Tclunk { fid: 1 }, i).unwrap();
    }
    let r = c.start_request(Body::Tclunk { fid: 1 }, 0);
    assert_eq!(r, Err(Error::NoTags));
    // Answer one: its tag comes back.
    c.handle_incoming(Msg {
        tag: 40,
        body: Body::Rclunk,
    });
    let id = c.start_request(Body::Tclunk { fid: 1 }, 0).unwrap();
    assert_eq!(id.tag(), 40);
}

#[test]
fn same_inputs_same_outputs() {
    fn run() -> Vec<Msg> {
        let mut s = Sim::new();
        let a = s.read();
        let b = s.walk();
        s.cancel(a);
        s.answer(s.tag(b));
        s.read();
        s.drain();
        s.server.log
    }
    assert_eq!(run(), run());
}

/// Tags the random sessions may use.
const TAGS: u16 = 16;

/// One step of a random session.
#[derive(Clone, Debug)]
enum Op {
    Read,
    Walk { unread: bool },
    Cancel(usize),
    Answer(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Read),
        2 => any::<bool>().prop_map(|unread| Op::Walk { unread }),
        2 => any::<usize>().prop_map(Op::Cancel),
        4 => any::<usize>().prop_map(Op::Answer),
    ]
}

proptest! {
    #[test]
    fn random_sessions_keep_the_rules(ops in prop::collection::vec(op(), 0..200), lose in any::<bool>()) {
        // Few tags, so they are reused often and reuse mistakes show (the server checks).
        let mut s = Sim::with_core(ClientCore::with_tags(MSIZE, TAGS));
        for op in ops {
            match op {
                // Leave room for the Tflushes and clunks the outstanding requests may need.
                Op::Read | Op::Walk { .. } if s.core.outstanding() >= TAGS as usize / 4 => {}
                Op::Read => { s.read(); }
                Op::Walk { unread } => {
                    if unread {
                        s.unread.insert(s.next_waiter);
                    }
                    s.walk();
                }
                Op::Cancel(i) if s.next_waiter > 0 => {
                    s.cancel(i as u64 % s.next_waiter);
                }
                Op::Answer(i) if !s.server.inflight.is_empty() => {
                    let tag = *s.server.inflight.keys().nth(i % s.server.inflight.len()).unwrap();
                    s.answer(tag);
                }
                _ => {}
            }
        }
        if lose {
            let failed = s.core.connection_lost("gone".into());
            for w in &failed {
                let fate = &mut s.waiters.get_mut(w).unwrap().2;
                prop_assert_eq!(&*fate, &Fate::Waiting);
                *fate = Fate::Failed;
            }
            prop_assert_eq!(s.core.outstanding(), 0);
            for (_, _, fate) in s.waiters.values() {
                prop_assert!(*fate != Fate::Waiting, "waiter left hanging");
            }
        } else {
            s.drain();
            prop_assert_eq!(s.core.outstanding(), 0);
            prop_assert!(s.server.fids.is_empty(), "fids leaked: {:?}", s.server.fids);
            for (w, (_, _, fate)) in &s.waiters {
                match fate {
                    Fate::Cancelled => {}
                    Fate::Replied(Ok(Body::Rread { data })) => {
                        prop_assert_eq!(&data[..], &w.to_be_bytes()[..]);
                    }
                    Fate::Replied(Ok(Body::Rwalk { .. })) => {}
                    other => prop_assert!(false, "waiter {} ended {:?}", w, other),
                }
            }
        }
    }
}
