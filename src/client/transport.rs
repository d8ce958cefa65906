//! The transports behind a [`Registry`](super::Registry): how each registries(2) operation reaches
//! a registry.
//!
//! # The seam
//!
//! [`Backend`] is a private enum with one variant per transport and one method per registry
//! operation (`index`, `find`, `register`, `unregister`, `events`), working on the registry's text
//! (the §1 format) rather than on files, so that a transport which has no files can still be one.
//! The variants:
//!
//! * `Styx`: 9P2000 over any byte stream (our `styx` client), shaped like Inferno's devmnt traffic
//!   (spec/vectors/limbo-registries-9p.md);
//! * `Host`: a directory the operating system has mounted, through ordinary file operations;
//! * `Shim`: the TCP shim (ports 6701/6702/6703, `shim_backend.rs`): find = a 6702
//!   connection with the query line; services = find with an empty query; register = a 6701
//!   connection held open, updates are further lines; events = a 6703 connection after its
//!   `READY` line; unregister has no shim counterpart ([`Error::Unsupported`]).
//!
//! Another transport is one more variant here, in [`RegHandle`] and [`EventHandle`], an arm in
//! each `match`, and a public constructor beside the others in `registry.rs` (as
//! `Registry::connect_shim`). Nothing else public changes.

use super::error::{Error, Result};
use super::host::{HostDir, HostFile};
use super::shim_backend::{ShimClient, ShimEvents, ShimReg};
use super::styx_backend::{FeedFile, StyxFile, StyxSession};
use crate::wire::parse_event;
use std::sync::Arc;

/// How many bytes one read asks for: devmnt's 8192 (msize 8216 less the 24-byte header).
pub const READ_COUNT: u32 = 8192;

/// One way of reaching a registry.
pub enum Backend {
    /// 9P2000 over a stream.
    Styx(Arc<StyxSession>),
    /// A host directory.
    Host(HostDir),
    /// The TCP shim's three ports (spec/registry.md §8).
    Shim(ShimClient),
}

impl Backend {
    /// The whole `index` text, re-read from offset 0 (Limbo's `services`).
    pub async fn index(&self) -> Result<String> {
        match self {
            Backend::Styx(s) => s.index().await,
            Backend::Host(h) => h.index().await,
            Backend::Shim(c) => c.index().await,
        }
    }

    /// The `find` reply to `query` (Limbo's `find`).
    pub async fn find(&self, query: String) -> Result<String> {
        match self {
            Backend::Styx(s) => s.find(&query).await,
            Backend::Host(h) => h.find(query).await,
            Backend::Shim(c) => c.find(query).await,
        }
    }

    /// Registers with `line`, returning the handle whose closing unregisters.
    pub async fn register(&self, line: String) -> Result<RegHandle> {
        match self {
            Backend::Styx(s) => Ok(RegHandle::Styx(s.register(&line).await?)),
            Backend::Host(h) => Ok(RegHandle::Host(h.register(line).await?)),
            Backend::Shim(c) => Ok(RegHandle::Shim(c.register(line).await?)),
        }
    }

    /// The owner of each service, where the transport can tell (9P: the files' uid); empty
    /// through the shim, whose lines do not carry it, and on a host directory.
    pub async fn owners(&self) -> Result<std::collections::HashMap<String, String>> {
        match self {
            Backend::Styx(s) => s.owners().await,
            Backend::Host(_) | Backend::Shim(_) => Ok(Default::default()),
        }
    }

    /// Removes the service called `name` (only its owner may).
    pub async fn unregister(&self, name: &str) -> Result<()> {
        match self {
            Backend::Styx(s) => s.unregister(name).await,
            Backend::Host(h) => h.unregister(name).await,
            Backend::Shim(c) => c.unregister(name).await,
        }
    }

    /// Starts a change-feed watcher with `request` (spec/feed.md); only 9P registries of ours
    /// have one.
    pub async fn feed(&self, request: &str) -> Result<FeedFile> {
        match self {
            Backend::Styx(s) => s.feed(request).await,
            Backend::Host(_) => Err(Error::NoFeed("a host directory".into())),
            Backend::Shim(_) => Err(Error::NoFeed("the TCP shim".into())),
        }
    }

    /// Opens the change notifications; the change counter is captured now.
    pub async fn events(&self) -> Result<EventHandle> {
        match self {
            Backend::Styx(s) => Ok(EventHandle::Styx(s.events().await?)),
            Backend::Host(h) => Ok(EventHandle::Host(h.events().await?)),
            Backend::Shim(c) => Ok(EventHandle::Shim(c.events().await?)),
        }
    }
}

/// A live registration: the open `new` file (or its equivalent).
pub enum RegHandle {
    /// An open 9P fid.
    Styx(StyxFile),
    /// An open host file.
    Host(HostFile),
    /// An open connection to the shim's new port.
    Shim(ShimReg),
}

impl RegHandle {
    /// Writes one attribute update (`attr val ...`).
    pub async fn write(&mut self, data: String) -> Result<()> {
        match self {
            RegHandle::Styx(f) => f.write_next(data.as_bytes()).await,
            RegHandle::Host(f) => f.write(data).await,
            RegHandle::Shim(c) => c.write(data).await,
        }
    }

    /// Closes the registration, waiting until the registry has been told.
    pub async fn close(self) -> Result<()> {
        match self {
            RegHandle::Styx(f) => f.close().await,
            RegHandle::Host(f) => {
                drop(f);
                Ok(())
            }
            RegHandle::Shim(c) => c.close().await,
        }
    }
}

/// An open change-notification channel.
pub enum EventHandle {
    /// An open 9P `event` fid.
    Styx(StyxFile),
    /// An open host `event` file.
    Host(HostFile),
    /// A connection to the shim's event port, after `READY`.
    Shim(ShimEvents),
}

impl EventHandle {
    /// Waits for the next change and returns the registry's change counter.
    pub async fn next(&mut self) -> Result<u64> {
        let data = match self {
            EventHandle::Styx(f) => f.read_next(READ_COUNT).await,
            EventHandle::Host(f) => f.read(READ_COUNT as usize).await,
            EventHandle::Shim(e) => return e.next().await,
        };
        let data = data.map_err(|e| match e {
            // Older registries serve no event file: a read fails with `not implemented yet`.
            Error::Registry(d) if d.to_string().contains("not implemented") => {
                Error::NoEvents(d.to_string())
            }
            e => e,
        })?;
        if data.is_empty() {
            return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        parse_event(&data).ok_or_else(|| Error::BadEvent(String::from_utf8_lossy(&data).into()))
    }
}
