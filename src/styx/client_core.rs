//! The client's connection logic as a pure state machine: no sockets, no tasks, no clock.
//!
//! [`ClientCore`] owns tag and fid allocation, the table of outstanding requests and the
//! flush(5) bookkeeping. It is fed requests ([`ClientCore::start_request`]), cancellations
//! ([`ClientCore::cancel`]), replies ([`ClientCore::handle_incoming`]) and connection loss
//! ([`ClientCore::connection_lost`]); it is polled for bytes to send
//! ([`ClientCore::poll_transmit`]) and for [`Event`]s ([`ClientCore::poll_event`]). The same
//! inputs always give the same outputs, so it can be tested against a scripted server without
//! any I/O. [`crate::styx::Client`] is the tokio adapter around it.
//!
//! Invariants the core keeps:
//! * a tag is never reused while its request is outstanding;
//! * a cancelled request's tag stays reserved until its Tflush is answered, and its waiter
//!   never sees a reply after the cancel, even one that raced the Tflush;
//! * what an abandoned request did (a new fid) is undone once we know whether it happened.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::error::{Error, Result};
use super::msg::{Body, IOHDRSZ, Msg, NOFID, NOTAG, VERSION};

/// A 9P tag.
pub type Tag = u16;

/// Names one request for its whole life. The tag alone is not enough: once a reply frees a
/// tag, a later request may reuse it, and a late cancel of the first must not hit the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    tag: Tag,
    seq: u64,
}

impl RequestId {
    /// The tag the request went out with.
    pub fn tag(&self) -> Tag {
        self.tag
    }
}

/// What to undo if a request is abandoned (cancelled) before its reply is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Nothing.
    None,
    /// The request (walk, attach) would establish this fid: clunk it if it did.
    NewFid(u32),
    /// The request (clunk, remove) ends this fid: clunk it if it never reached the server.
    EndsFid(u32),
}

/// Something the adapter must act on, from [`ClientCore::poll_event`].
#[derive(Debug, PartialEq)]
pub enum Event<W> {
    /// The reply to a request: hand it to its waiter. Rerror arrives as [`Error::Remote`].
    Reply {
        /// Who waits for it (given to [`ClientCore::start_request`]).
        waiter: W,
        /// The reply.
        result: Result<Body>,
    },
    /// A tag is free again (its request was answered, or its Tflush was).
    TagFreed(Tag),
    /// A reply for a tag we have no request under (a server bug); it was ignored.
    UnknownTag(Tag),
}

/// What [`ClientCore::cancel`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The request was outstanding: a Tflush is queued (or, if none could be sent, the tag
    /// stays reserved for good). Its waiter will get nothing.
    Flushing,
    /// The request is no longer outstanding: its reply was already handed out as an
    /// [`Event::Reply`] (or the connection is gone). If that reply was never read, call
    /// [`ClientCore::reply_unread`].
    NotOutstanding,
}

/// The state of one outstanding tag.
#[derive(Debug)]
enum Slot<W> {
    /// A caller awaits the reply.
    Waiting { waiter: W, seq: u64 },
    /// The caller went away and a Tflush is out; the tag is reserved until the Rflush.
    /// `replied`: the request's own reply beat the Rflush (so it took effect).
    Abandoned { cleanup: Cleanup, replied: bool },
    /// A Tflush for `oldtag`.
    Flush { oldtag: Tag },
    /// A request nobody waits for (clunk on drop); frees the fid on reply.
    Background { free_fid: u32 },
}

/// The pure core of a 9P2000 client connection; `W` identifies whoever waits for a reply
/// (a channel sender in the tokio adapter, a number in tests).
#[derive(Debug)]
pub struct ClientCore<W> {
    msize: u32,
    pending: HashMap<Tag, Slot<W>>,
    next_tag: Tag,
    /// Tags are taken from 0..ntags (NOTAG excluded).
    ntags: Tag,
    next_seq: u64,
    next_fid: u32,
    free_fids: Vec<u32>,
    /// Why the connection is gone, once it is.
    closed: Option<String>,
    outbox: VecDeque<Bytes>,
    events: VecDeque<Event<W>>,
}

/// The Tversion that opens a connection asking for `msize`.
pub fn version_request(msize: u32) -> Result<Bytes> {
    let m = Msg {
        tag: NOTAG,
        body: Body::Tversion {
            msize,
            version: VERSION.into(),
        },
    };
    Ok(m.to_bytes()?)
}

/// The msize a connection runs at, given our Tversion asked for `asked` and `reply` answered.
pub fn negotiate(asked: u32, reply: Body) -> Result<u32> {
    let msize = match reply {
        Body::Rversion { msize, version } if version == VERSION => msize.min(asked),
        Body::Rversion { version, .. } => return Err(Error::Version(version)),
        Body::Rerror { ename } => return Err(Error::Remote(ename)),
        other => return Err(Error::Unexpected(other.name())),
    };
    if msize <= IOHDRSZ {
        return Err(Error::Version(format!("msize {msize}")));
    }
    Ok(msize)
}

/// Largest data of one read or write on a connection of `msize` through a fid opened with
/// `iounit` (0: none given): the iounit, at most msize − IOHDRSZ.
pub fn io_size(msize: u32, iounit: u32) -> u32 {
    let max = msize.saturating_sub(IOHDRSZ);
    if iounit == 0 { max } else { iounit.min(max) }
}

impl<W> ClientCore<W> {
    /// A core for a connection whose Tversion exchange settled on `msize`.
    pub fn new(msize: u32) -> Self {
        ClientCore::with_tags(msize, NOTAG)
    }

    /// A core that uses only tags 0..`ntags` (at least 1): fewer requests in flight, and in
    /// tests, tags reused often enough to catch reuse mistakes.
    pub fn with_tags(msize: u32, ntags: Tag) -> Self {
        ClientCore {
            msize,
            pending: HashMap::new(),
            next_tag: 0,
            ntags: ntags.max(1),
            next_seq: 0,
            next_fid: 1,
            free_fids: Vec::new(),
            closed: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The negotiated message size.
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// Why the connection is gone, if it is.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Whether `tag` is in use (by a request, an abandoned request or a Tflush).
    pub fn is_outstanding(&self, tag: Tag) -> bool {
        self.pending.contains_key(&tag)
    }

    /// How many tags are in use.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// A fid number not in use on this connection (allocated upwards from 1, reused after
    /// [`ClientCore::free_fid`]).
    pub fn alloc_fid(&mut self) -> Result<u32> {
        if let Some(f) = self.free_fids.pop() {
            return Ok(f);
        }
        if self.next_fid == NOFID {
            return Err(Error::Io("out of fids".into()));
        }
        self.next_fid += 1;
        Ok(self.next_fid - 1)
    }

    /// Makes `fid` available again: the server no longer knows it (or never did).
    pub fn free_fid(&mut self, fid: u32) {
        self.free_fids.push(fid);
    }

    /// Queues request `body` for `waiter`; the bytes to send come out of
    /// [`ClientCore::poll_transmit`]. What to undo if the request is abandoned is given to
    /// [`ClientCore::cancel`] or [`ClientCore::reply_unread`], when it matters.
    pub fn start_request(&mut self, body: Body, waiter: W) -> Result<RequestId> {
        let seq = self.next_seq;
        let tag = self.start(body, Slot::Waiting { waiter, seq })?;
        self.next_seq += 1;
        Ok(RequestId { tag, seq })
    }

    /// Clunks `fid` with nobody waiting; the fid number is reused only after the Rclunk.
    pub fn clunk_background(&mut self, fid: u32) {
        // Failure (closed, no tags) leaks the fid number, which is harmless.
        let _ = self.start(Body::Tclunk { fid }, Slot::Background { free_fid: fid });
    }

    /// Allocates a tag, registers `slot` under it and queues the message.
    fn start(&mut self, body: Body, slot: Slot<W>) -> Result<Tag> {
        if let Some(why) = &self.closed {
            return Err(Error::Disconnected(why.clone()));
        }
        let tag = self.alloc_tag()?;
        let bytes = Msg { tag, body }.to_bytes()?;
        if bytes.len() > self.msize as usize {
            return Err(Error::TooBig(bytes.len()));
        }
        self.pending.insert(tag, slot);
        self.outbox.push_back(bytes);
        Ok(tag)
    }

    fn alloc_tag(&mut self) -> Result<Tag> {
        for _ in 0..self.ntags {
            let t = self.next_tag;
            self.next_tag = (self.next_tag + 1) % self.ntags;
            if t != NOTAG && !self.pending.contains_key(&t) {
                return Ok(t);
            }
        }
        Err(Error::NoTags)
    }

    /// The waiter of request `id` gave up. If the request is still outstanding its waiter is
    /// dropped and a Tflush is queued; `cleanup` is undone once the server's answer shows
    /// whether the request took effect.
    pub fn cancel(&mut self, id: RequestId, cleanup: Cleanup) -> Cancel {
        match self.pending.get(&id.tag) {
            Some(Slot::Waiting { seq, .. }) if *seq == id.seq => {}
            _ => return Cancel::NotOutstanding,
        }
        self.pending.insert(
            id.tag,
            Slot::Abandoned {
                cleanup,
                replied: false,
            },
        );
        let flush = Body::Tflush { oldtag: id.tag };
        if self.start(flush, Slot::Flush { oldtag: id.tag }).is_err() {
            // No flush possible (no tags): keep the tag reserved rather than risk reusing it.
            tracing::debug!("styx client: could not flush tag {}", id.tag);
        }
        Cancel::Flushing
    }

    /// A reply was handed out as [`Event::Reply`] but its waiter went away without reading
    /// it (`ok`: it was not Rerror): undo what the request did.
    pub fn reply_unread(&mut self, cleanup: Cleanup, ok: bool) {
        self.after_reply(cleanup, ok);
    }

    /// Feeds one message from the server; what follows comes out of
    /// [`ClientCore::poll_event`] and [`ClientCore::poll_transmit`].
    pub fn handle_incoming(&mut self, msg: Msg) {
        let Some(slot) = self.pending.remove(&msg.tag) else {
            self.events.push_back(Event::UnknownTag(msg.tag));
            return;
        };
        match slot {
            Slot::Waiting { waiter, .. } => {
                let result = match msg.body {
                    Body::Rerror { ename } => Err(Error::Remote(ename)),
                    b => Ok(b),
                };
                self.events.push_back(Event::Reply { waiter, result });
                self.events.push_back(Event::TagFreed(msg.tag));
            }
            Slot::Abandoned { cleanup, replied } => {
                // The reply beat the Rflush: the request took effect; the tag stays reserved
                // until the Rflush. (A second reply is a server bug; it changes nothing.)
                self.pending.insert(
                    msg.tag,
                    Slot::Abandoned {
                        cleanup: Cleanup::None,
                        replied: true,
                    },
                );
                if !replied {
                    let ok = !matches!(msg.body, Body::Rerror { .. });
                    self.after_reply(cleanup, ok);
                }
            }
            Slot::Flush { oldtag } => {
                // Rflush (or even Rerror: the flush is over either way) frees both tags.
                self.events.push_back(Event::TagFreed(msg.tag));
                if let Some(Slot::Abandoned { cleanup, replied }) = self.pending.remove(&oldtag) {
                    if !replied {
                        self.never_done(cleanup);
                    }
                    self.events.push_back(Event::TagFreed(oldtag));
                } else {
                    // Not ours to touch: e.g. the abandoned tag is gone with a lost connection.
                    tracing::debug!("styx client: Rflush for tag {oldtag} not being flushed");
                }
            }
            Slot::Background { free_fid } => {
                self.free_fids.push(free_fid);
                self.events.push_back(Event::TagFreed(msg.tag));
            }
        }
    }

    /// An abandoned request was answered (`ok`: not Rerror): undo what it did.
    fn after_reply(&mut self, cleanup: Cleanup, ok: bool) {
        match cleanup {
            Cleanup::None => {}
            Cleanup::NewFid(fid) if ok => self.clunk_background(fid),
            Cleanup::NewFid(fid) | Cleanup::EndsFid(fid) => self.free_fids.push(fid),
        }
    }

    /// An abandoned request was flushed before the server acted on it.
    fn never_done(&mut self, cleanup: Cleanup) {
        match cleanup {
            Cleanup::None => {}
            Cleanup::NewFid(fid) => self.free_fids.push(fid),
            Cleanup::EndsFid(fid) => self.clunk_background(fid),
        }
    }

    /// The connection is gone (`why`): every later request fails with it, nothing more is
    /// sent, and every waiter is returned, in tag order, to be failed with
    /// [`Error::Disconnected`]. Idempotent: the first reason sticks.
    pub fn connection_lost(&mut self, why: String) -> Vec<W> {
        if self.closed.is_none() {
            self.closed = Some(why);
        }
        self.outbox.clear();
        let mut slots: Vec<(Tag, Slot<W>)> = self.pending.drain().collect();
        slots.sort_by_key(|(t, _)| *t);
        slots
            .into_iter()
            .filter_map(|(_, s)| match s {
                Slot::Waiting { waiter, .. } => Some(waiter),
                _ => None,
            })
            .collect()
    }

    /// The next message to send, in the order they must reach the server.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outbox.pop_front()
    }

    /// The next thing to act on.
    pub fn poll_event(&mut self) -> Option<Event<W>> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(b: Bytes) -> Msg {
        Msg::decode(b, 1 << 16).unwrap()
    }

    #[test]
    fn io_size_clips_to_msize() {
        assert_eq!(io_size(8216, 0), 8192);
        assert_eq!(io_size(8216, 100), 100);
        assert_eq!(io_size(8216, 1 << 20), 8192);
        assert_eq!(io_size(10, 0), 0);
    }

    #[test]
    fn negotiate_lowers_and_rejects() {
        let r = |msize, v: &str| Body::Rversion {
            msize,
            version: v.into(),
        };
        assert_eq!(negotiate(8216, r(4096, VERSION)).unwrap(), 4096);
        assert_eq!(negotiate(4096, r(8216, VERSION)).unwrap(), 4096);
        assert!(matches!(
            negotiate(8216, r(8216, "9P")),
            Err(Error::Version(_))
        ));
        assert!(matches!(
            negotiate(8216, r(24, VERSION)),
            Err(Error::Version(_))
        ));
    }

    #[test]
    fn late_cancel_does_not_hit_a_reused_tag() {
        let mut c = ClientCore::new(8216);
        let a = c.start_request(Body::Tstat { fid: 1 }, 'a').unwrap();
        let sent = decode(c.poll_transmit().unwrap());
        c.handle_incoming(Msg {
            tag: sent.tag,
            body: Body::Rclunk,
        });
        // Force the same tag again.
        c.next_tag = a.tag();
        let b = c.start_request(Body::Tstat { fid: 1 }, 'b').unwrap();
        assert_eq!(a.tag(), b.tag());
        assert_eq!(c.cancel(a, Cleanup::None), Cancel::NotOutstanding);
        assert_eq!(c.cancel(b, Cleanup::None), Cancel::Flushing);
    }
}
