//! One server connection's protocol logic, with no I/O and no clock: bytes in, bytes out, and
//! the requests to run in between.
//!
//! The adapter ([`super::conn`]) feeds received bytes into [`ServerCore::input`], takes
//! [`Action`]s from [`ServerCore::next_action`] and runs each started request, hands every
//! result back with [`ServerCore::complete`], and writes [`ServerCore::output`] to the peer.
//! Everything 9P says about tags lives here: version negotiation, duplicate tags, Tflush
//! (a flushed request is never answered, and its Rflush is queued before anything it could
//! still produce), and the bound on requests running at once.

use std::collections::{HashSet, VecDeque};
use std::fmt;

use bytes::BytesMut;

use super::super::codec::{DecodeError, decode_frame};
use super::super::msg::{Body, Msg, VERSION};
use super::FsError;
use super::error::errors::*;

/// Output beyond this stops the reading of requests until the peer has taken some of it.
const OUTPUT_HIGH_WATER: usize = 256 * 1024;

/// What the adapter must do next.
#[derive(Debug, PartialEq)]
pub(super) enum Action {
    /// Run this request and report its result with [`ServerCore::complete`].
    Start {
        /// The request's tag.
        tag: u16,
        /// The request.
        body: Body,
    },
    /// The request under this tag was flushed: drop it without answering (its Rflush is
    /// already queued, and [`ServerCore::complete`] would ignore its result anyway).
    Cancel {
        /// The flushed request's tag.
        tag: u16,
    },
    /// A Tversion: drop every running request and clunk every fid, then call
    /// [`ServerCore::finish_version`], which queues the Rversion.
    Reset,
}

/// A protocol violation that ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Botch(pub(super) String);

impl fmt::Display for Botch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "9P protocol botch: {}", self.0)
    }
}

impl From<DecodeError> for Botch {
    fn from(e: DecodeError) -> Botch {
        Botch(e.to_string())
    }
}

/// A Tversion seen, waiting for the adapter's reset.
#[derive(Debug)]
struct VersionRequest {
    tag: u16,
    msize: u32,
    version: String,
}

/// The state of one server connection (see the module doc).
#[derive(Debug)]
pub(super) struct ServerCore {
    /// The largest msize this server accepts.
    limit_msize: u32,
    /// Most requests running at once; as many more may wait in `queue`.
    max_outstanding: usize,
    /// The negotiated msize; 0 before Tversion.
    msize: u32,
    input: BytesMut,
    output: BytesMut,
    /// Tags of started requests not yet answered.
    running: HashSet<u16>,
    /// Requests waiting for a free slot, in arrival order: at most `max_outstanding`, and any
    /// number of Tclunks besides.
    queue: VecDeque<Msg>,
    /// A Tversion that waits for the adapter's reset.
    version: Option<VersionRequest>,
    /// Messages decoded so far.
    decoded: u64,
    /// Requests refused because `max_outstanding` ran and as many waited, not yet reported.
    refused: u64,
}

/// The first room of a connection's input and output buffers (both are given back whenever
/// they are empty and the connection has nothing to do: [`ServerCore::release_idle_buffers`]).
pub(super) const FIRST_BUFFER: usize = 1024;

impl ServerCore {
    /// A connection accepting messages up to `limit_msize` bytes, running at most
    /// `max_outstanding` requests at once.
    pub(super) fn new(limit_msize: u32, max_outstanding: usize) -> ServerCore {
        ServerCore {
            limit_msize,
            max_outstanding: max_outstanding.max(1),
            msize: 0,
            // Small at first, grown by use: most connections only ever carry short messages
            // (a registration's), and a connection is held for each.
            input: BytesMut::with_capacity(FIRST_BUFFER),
            output: BytesMut::with_capacity(FIRST_BUFFER),
            running: HashSet::new(),
            queue: VecDeque::new(),
            version: None,
            decoded: 0,
            refused: 0,
        }
    }

    /// How many requests were refused for want of room since the last call (for the log).
    pub(super) fn take_refused(&mut self) -> u64 {
        std::mem::take(&mut self.refused)
    }

    /// How many messages have been decoded so far (the adapter's message timeout restarts
    /// when this moves).
    pub(super) fn decoded(&self) -> u64 {
        self.decoded
    }

    /// The negotiated msize, 0 before Tversion.
    pub(super) fn msize(&self) -> u32 {
        self.msize
    }

    /// The buffer received bytes are appended to.
    pub(super) fn input(&mut self) -> &mut BytesMut {
        &mut self.input
    }

    /// Gives back the input and output buffers when both are empty, so that an idle
    /// connection (one holding a registration, or a waiting read) holds none: the next read
    /// or reply takes a new one. One allocation per burst of traffic is nothing beside its
    /// system calls; 2 KiB a connection is half of what an idle one otherwise costs.
    pub(super) fn release_idle_buffers(&mut self) {
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = BytesMut::new();
        }
        if self.output.is_empty() && self.output.capacity() > 0 {
            self.output = BytesMut::new();
        }
    }

    /// Whether more input should be read now: false while a Tversion waits for its reset, or
    /// while the peer is not taking its replies. A full queue does not stop the reading: a
    /// Tflush must always get through, so requests beyond the queue are refused at once.
    pub(super) fn wants_input(&self) -> bool {
        self.version.is_none() && self.output.len() < OUTPUT_HIGH_WATER
    }

    /// Whether part of a message has arrived but not all of it.
    pub(super) fn in_message(&self) -> bool {
        !self.input.is_empty()
    }

    /// Whether no request is running or waiting.
    pub(super) fn is_idle(&self) -> bool {
        self.running.is_empty() && self.queue.is_empty() && self.version.is_none()
    }

    /// Encoded replies waiting to be written; the adapter removes what it wrote.
    pub(super) fn output(&mut self) -> &mut BytesMut {
        &mut self.output
    }

    /// The next thing to do, or `None` until more input arrives or a request completes.
    pub(super) fn next_action(&mut self) -> Result<Option<Action>, Botch> {
        loop {
            if self.version.is_some() {
                return Ok(None);
            }
            if self.running.len() < self.max_outstanding
                && let Some(Msg { tag, body }) = self.queue.pop_front()
            {
                self.running.insert(tag);
                return Ok(Some(Action::Start { tag, body }));
            }
            if !self.wants_input() {
                return Ok(None);
            }
            let limit = match self.msize {
                0 => self.limit_msize,
                m => m,
            };
            let Some(msg) = decode_frame(&mut self.input, limit)? else {
                return Ok(None);
            };
            self.decoded += 1;
            if let Some(action) = self.dispatch(msg)? {
                return Ok(Some(action));
            }
        }
    }

    /// Handles one request: answers it here, queues it, or says what the adapter must do.
    fn dispatch(&mut self, Msg { tag, body }: Msg) -> Result<Option<Action>, Botch> {
        match body {
            Body::Tversion { msize, version } => {
                // A new session: whatever ran or waited in the old one is forgotten.
                self.queue.clear();
                self.running.clear();
                self.version = Some(VersionRequest {
                    tag,
                    msize,
                    version,
                });
                return Ok(Some(Action::Reset));
            }
            _ if self.msize == 0 => self.reply_error(tag, ENOVERSION),
            Body::Tflush { oldtag } => {
                let cancel = if let Some(i) = self.queue.iter().position(|m| m.tag == oldtag) {
                    self.queue.remove(i);
                    None
                } else if self.running.remove(&oldtag) {
                    Some(Action::Cancel { tag: oldtag })
                } else {
                    None
                };
                self.reply(tag, Body::Rflush);
                return Ok(cancel);
            }
            Body::Tauth { .. } => self.reply_error(tag, ENOAUTH),
            ref b if b.type_id() % 2 == 1 => {
                return Err(Botch(format!("{} from client", b.name())));
            }
            _ if self.running.contains(&tag) || self.queue.iter().any(|m| m.tag == tag) => {
                self.reply_error(tag, EDUPTAG)
            }
            // A Tstat never waits in the file system (it answers from the fid at once), so it
            // starts past the limit: a client's heartbeat (spec/registry.md §11) is answered
            // however many reads it holds parked. Tags bound how many there can be.
            body @ Body::Tstat { .. } => {
                self.running.insert(tag);
                return Ok(Some(Action::Start { tag, body }));
            }
            body if self.running.len() < self.max_outstanding && self.queue.is_empty() => {
                self.running.insert(tag);
                return Ok(Some(Action::Start { tag, body }));
            }
            // A Tclunk is never refused: it frees what the limit protects, and refusing it would
            // keep a fid (a registration) the client has let go. Tags are unique among waiting
            // requests, so clunks queued past the limit are bounded by the tag space.
            ref b
                if self.queue.len() >= self.max_outstanding
                    && !matches!(b, Body::Tclunk { .. }) =>
            {
                self.refused += 1;
                self.reply_error(tag, ETOOMANYREQUESTS);
            }
            body => self.queue.push_back(Msg { tag, body }),
        }
        Ok(None)
    }

    /// Takes the result of a started request: queues its reply, unless it was flushed or its
    /// session ended meanwhile.
    pub(super) fn complete(&mut self, tag: u16, result: Result<Body, FsError>) {
        if self.running.remove(&tag) {
            let body = result.unwrap_or_else(|e| Body::Rerror {
                ename: e.0.into_owned(),
            });
            self.reply(tag, body);
        }
    }

    /// Ends a Tversion once the adapter has reset the session: queues the Rversion (or the
    /// Rerror for a too-small msize) and takes the new msize.
    pub(super) fn finish_version(&mut self) {
        let Some(VersionRequest {
            tag,
            msize,
            version,
        }) = self.version.take()
        else {
            return;
        };
        if msize < 256 {
            return self.reply_error(tag, EMSIZE);
        }
        let ok = version == VERSION || version.starts_with("9P2000.");
        let msize = msize.min(self.limit_msize);
        if ok {
            self.msize = msize;
        }
        let version = if ok { VERSION } else { "unknown" }.to_string();
        self.reply(tag, Body::Rversion { msize, version });
    }

    fn reply_error(&mut self, tag: u16, ename: &str) {
        self.reply(
            tag,
            Body::Rerror {
                ename: ename.into(),
            },
        );
    }

    /// Appends a reply to the output; one that does not fit msize becomes an Rerror.
    fn reply(&mut self, tag: u16, body: Body) {
        let msize = match self.msize {
            0 => self.limit_msize,
            m => m,
        } as usize;
        let start = self.output.len();
        let reply = Msg { tag, body };
        if reply.encode(&mut self.output).is_ok() && self.output.len() - start <= msize {
            return;
        }
        self.output.truncate(start);
        let ename = "Styx reply didn't fit".to_string();
        let _ = Msg {
            tag,
            body: Body::Rerror { ename },
        }
        .encode(&mut self.output);
    }
}

/// Feeds `data` to a new core (msize 8192, 4 requests at once) `step` bytes at a time,
/// answering every started request at once, and panics if the core breaks a promise: its
/// output must be whole R-messages, never more replies to a tag than requests with that tag,
/// and never a reply to a flushed request after its Rflush. For the fuzz targets (`fuzz/`), built
/// only with the `fuzzing` feature.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_feed(data: &[u8], step: usize) {
    use std::collections::HashMap;
    let mut core = ServerCore::new(8192, 4);
    let mut asked: HashMap<u16, usize> = HashMap::new();
    let mut answered: HashMap<u16, usize> = HashMap::new();
    let mut cancelled: HashMap<u16, usize> = HashMap::new();
    let mut seen = BytesMut::new();
    let mut held = Vec::new();
    for piece in data.chunks(step.max(1)) {
        core.input().extend_from_slice(piece);
        seen.extend_from_slice(piece);
        while let Ok(Some(Msg { tag, .. })) = decode_frame(&mut seen, u32::MAX) {
            *asked.entry(tag).or_default() += 1;
        }
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 1 << 20, "the core does not settle");
            let action = match core.next_action() {
                Ok(Some(a)) => a,
                Ok(None) | Err(_) => break,
            };
            match action {
                // Every other request waits a round, so that flushes can find it running.
                Action::Start { tag, .. } if tag % 2 == 0 => held.push(tag),
                Action::Start { tag, .. } => core.complete(tag, Ok(Body::Rclunk)),
                Action::Cancel { tag } => {
                    *cancelled.entry(tag).or_default() += 1;
                    held.retain(|t| *t != tag);
                    // A late result of the flushed request must be dropped.
                    core.complete(tag, Ok(Body::Rclunk));
                }
                Action::Reset => {
                    held.clear();
                    core.finish_version();
                }
            }
            assert!(core.running.len() <= core.max_outstanding);
            // Clunks wait past the limit (they are never refused); nothing else does.
            let others = core.queue.iter();
            let others = others.filter(|m| !matches!(m.body, Body::Tclunk { .. }));
            assert!(others.count() <= core.max_outstanding);
        }
        for tag in held.drain(..) {
            core.complete(tag, Err(FsError::from("later")));
        }
    }
    let mut out = core.output().split();
    while let Some(m) = decode_frame(&mut out, u32::MAX).expect("the core's output decodes") {
        assert!(m.body.type_id() % 2 == 1, "not a reply: {}", m.body.name());
        let n = answered.entry(m.tag).or_default();
        *n += 1;
        assert!(
            *n <= asked.get(&m.tag).copied().unwrap_or(0),
            "tag {} answered too often",
            m.tag
        );
    }
    assert!(out.is_empty(), "a partial message in the output");
}

#[cfg(test)]
mod tests;
