//! The change feed, client side (spec/feed.md): each change with its revision, filtered by the
//! registry, resumable from a revision. Only a registry of ours has it; [`Monitor`] falls back
//! to `event` and `find` without it.
//!
//! [`Monitor`]: super::Monitor

use super::error::{Error, Result};
use super::service::Service;
use super::transport::READ_COUNT;
use super::{Attributes, Registry};
use crate::client::styx_backend::FeedFile;
use crate::wire::{FeedRecord, FeedRequest, FeedStart};
use futures_util::Stream;
use futures_util::stream::BoxStream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use crate::wire::FeedKind as ChangeKind;

/// A revision: every change the registry makes has the next one.
pub type Revision = u64;

/// One change as the feed reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// Its revision.
    pub revision: Revision,
    /// Added, changed or removed, as the watcher's query sees it (a service that stops
    /// matching is removed, one that starts to match is added).
    pub kind: ChangeKind,
    /// The service; for a removal, as it last was.
    pub service: Service,
}

/// A feed record: a change, or the end of a snapshot.
#[derive(Debug)]
pub(crate) enum Item {
    Change(ChangeEvent),
    Synced(Revision),
}

/// The records of one `watch` fid, whole lines at a time.
pub(crate) struct FeedReader {
    file: FeedFile,
    buf: Vec<u8>,
    ready: VecDeque<Item>,
}

impl FeedReader {
    /// Starts a watcher of `query` at `start` on `reg`.
    pub(crate) async fn open<A: AsRef<str>, V: AsRef<str>>(
        reg: &Registry,
        query: &[(A, V)],
        start: FeedStart,
    ) -> Result<FeedReader> {
        let req = FeedRequest {
            start,
            query: query
                .iter()
                .map(|(a, v)| (a.as_ref().to_string(), v.as_ref().to_string()))
                .collect(),
        };
        let file = reg.backend().feed(&req.format()).await?;
        Ok(FeedReader {
            file,
            buf: Vec::new(),
            ready: VecDeque::new(),
        })
    }

    /// The next record, waiting for it. Cancel-safe: a record read is never dropped.
    pub(crate) async fn next(&mut self) -> Result<Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Ok(item);
            }
            let data = self.file.read(READ_COUNT).await?;
            if data.is_empty() {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.buf.extend_from_slice(&data);
            while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let line = String::from_utf8(line)
                    .map_err(|_| Error::Protocol("feed record is not UTF-8".into()))?;
                let item = match FeedRecord::parse(&line) {
                    Ok(FeedRecord::Synced(rev)) => Item::Synced(rev),
                    Ok(FeedRecord::Change { rev, kind, service }) => Item::Change(ChangeEvent {
                        revision: rev,
                        kind,
                        service: Service::new(service.name, Attributes::new(service.attrs)),
                    }),
                    Err(e) => return Err(Error::Protocol(format!("bad feed record: {e}"))),
                };
                self.ready.push_back(item);
            }
        }
    }
}

/// The changes of the services matching a query, as [`Registry::changes`] returns them. After an
/// error the stream ends; [`Error::Compacted`] means the revision asked for (or the changes a
/// slow reader left unread) are no longer kept.
///
/// ```no_run
/// # async fn demo(reg: registries::Registry) -> Result<(), registries::Error> {
/// use futures_util::StreamExt;
/// let mut changes = reg.changes(&[("proto", "styx")], None).await?;
/// while let Some(ev) = changes.next().await {
///     let ev = ev?;
///     println!("{} {:?} {}", ev.revision, ev.kind, ev.service); // resume with Some(revision + 1)
/// }
/// # Ok(()) }
/// ```
pub struct Changes {
    inner: BoxStream<'static, Result<ChangeEvent>>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").finish_non_exhaustive()
    }
}

impl Changes {
    pub(crate) fn new(reader: FeedReader) -> Changes {
        let inner = futures_util::stream::unfold(Some(reader), |state| async move {
            let mut reader = state?;
            loop {
                match reader.next().await {
                    Ok(Item::Change(c)) => return Some((Ok(c), Some(reader))),
                    Ok(Item::Synced(_)) => continue,
                    Err(e) => return Some((Err(e), None)),
                }
            }
        });
        Changes {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for Changes {
    type Item = Result<ChangeEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
