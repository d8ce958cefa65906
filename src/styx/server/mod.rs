//! A 9P2000 server framework: implement [`FileSystem`], then [`serve_connection`] each accepted
//! stream (the crate's `net::Accepting` runs the accept loop).
//!
//! The framework owns the protocol: version negotiation, tags, the fid table, open modes,
//! flush, limits. The file system sees fid-level calls with a per-fid state of its own type
//! ([`FileSystem::Fid`]), so two opens of one file are two things. Requests of one connection
//! run concurrently: a read may block as long as it likes (the registry's `event` file), and is
//! cancelled by dropping its future when the client flushes it or the connection ends.
//!
//! The protocol logic of a connection (tags, flush, version, limits) is a pure state machine
//! without I/O, `conn_core::ServerCore`; one tokio task per connection drives it, and polls the
//! connection's waiting requests itself rather than giving each a task (see `tasks`). So the
//! futures of one connection run interleaved on that task, not in parallel: a file system
//! with heavy CPU work per request should hand it to `spawn_blocking` or a task of its own.
//!
//! Every fid that leaves the table (Tclunk, Tremove, the end of the connection, a new
//! Tversion) gets exactly one call of [`FileSystem::clunk`]. States that never became a fid
//! (the intermediate steps of a walk, a partial walk's result) are dropped without one.

//! ```no_run
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use registries::styx::server::{ConnCtx, FileSystem, FsError, Limits, Opened, errors, serve_connection};
//! use registries::styx::{QTDIR, Qid};
//!
//! /// A root directory holding one file, `motd`.
//! struct Motd;
//!
//! impl FileSystem for Motd {
//!     type Fid = bool; // true: the root
//!     async fn attach(&self, _: &ConnCtx, _: &str, _: &str) -> Result<(bool, Qid), FsError> {
//!         Ok((true, Qid { ty: QTDIR, version: 0, path: 0 }))
//!     }
//!     async fn walk(&self, root: &bool, name: &str) -> Result<(bool, Qid), FsError> {
//!         match (*root, name) {
//!             (true, "motd") => Ok((false, Qid { ty: 0, version: 0, path: 1 })),
//!             _ => Err(errors::ENOTFOUND.into()),
//!         }
//!     }
//!     fn clone_fid(&self, fid: &bool) -> bool {
//!         *fid
//!     }
//!     async fn open(&self, root: &bool, _mode: u8) -> Result<Opened, FsError> {
//!         let qid = if *root { Qid { ty: QTDIR, version: 0, path: 0 } } else { Qid { ty: 0, version: 0, path: 1 } };
//!         Ok(Opened { qid, iounit: 0 })
//!     }
//!     async fn read(&self, root: &bool, offset: u64, count: u32) -> Result<Bytes, FsError> {
//!         let text: &[u8] = if *root { b"" } else { b"hello\n" };
//!         let start = (offset as usize).min(text.len());
//!         let end = (start + count as usize).min(text.len());
//!         Ok(Bytes::copy_from_slice(&text[start..end]))
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! // One connection; `registries::net::Accepting` runs an accept loop with a connection cap.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (stream, peer) = listener.accept().await?;
//! let ctx = ConnCtx { authenticated_user: None, peer: peer.to_string(), settled: None };
//! serve_connection(stream, Arc::new(Motd), ctx, Limits::default()).await
//! # }
//! ```

mod conn;
mod conn_core;
mod dir;
mod error;
mod limits;
mod ops;
mod tasks;

use std::future::Future;

use bytes::Bytes;

pub use conn::serve_connection;
#[cfg(feature = "fuzzing")]
pub use conn_core::fuzz_feed;
pub use dir::{DirReader, pack_dir};
pub use error::{FsError, errors};
pub use limits::Limits;

use super::msg::{Qid, Stat};

/// What whoever accepted a connection knows about it; passed to [`FileSystem::attach`].
#[derive(Debug, Clone, Default)]
pub struct ConnCtx {
    /// The user proven by an authentication layer, if any. When set it overrides the
    /// Tattach uname: the 9P attach name is not trusted once a connection is authenticated.
    pub authenticated_user: Option<String>,
    /// A description of the peer for logs (e.g. `tcp!127.0.0.1!4021`).
    pub peer: String,
    /// Set once the connection has attached (holds a fid), for whoever accepted it: a
    /// connection that has not may be closed to make room for another.
    pub settled: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The result of a successful open or create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The qid of the opened file; it may differ from the one walk returned (Inferno's
    /// registry rebinds the fid of `new` to the new service).
    pub qid: Qid,
    /// Largest atomic I/O, sent as is (0 tells the client "msize − IOHDRSZ"), or
    /// [`IOUNIT_MSIZE`] to send msize − IOHDRSZ itself.
    pub iounit: u32,
}

/// An [`Opened::iounit`] that the framework replaces by the connection's msize − IOHDRSZ, as
/// Inferno's styxservers answers the opens it handles itself.
pub const IOUNIT_MSIZE: u32 = u32::MAX;

/// A file tree served over 9P2000. All methods take `&self`; the server calls them
/// concurrently, so state that changes lives behind interior mutability.
///
/// Errors are [`FsError`]s whose text goes to the client verbatim in an Rerror.
/// The framework has already checked the fid exists, open state and open mode (reads need
/// OREAD/ORDWR/OEXEC, writes OWRITE/ORDWR), and refused read counts over msize − IOHDRSZ.
pub trait FileSystem: Send + Sync + 'static {
    /// Per-fid state, created by attach and walk, dropped after clunk.
    type Fid: Send + Sync + 'static;

    /// Attach a new fid to the root of tree `aname` for user `uname`. `uname` is
    /// `ctx.authenticated_user` when that is set, else the name the client claimed.
    fn attach(
        &self,
        ctx: &ConnCtx,
        uname: &str,
        aname: &str,
    ) -> impl Future<Output = Result<(Self::Fid, Qid), FsError>> + Send;

    /// Walk one element from `fid` (never open) to `name` ("..", too), creating the new
    /// fid's state from the old one. The framework does multi-element walks step by step and
    /// answers a partial walk itself.
    fn walk(
        &self,
        fid: &Self::Fid,
        name: &str,
    ) -> impl Future<Output = Result<(Self::Fid, Qid), FsError>> + Send;

    /// A copy of an unopened fid's state, for a walk of zero names.
    fn clone_fid(&self, fid: &Self::Fid) -> Self::Fid;

    /// Open `fid` with `mode` (OREAD.., maybe with OTRUNC/ORCLOSE bits).
    fn open(
        &self,
        fid: &Self::Fid,
        mode: u8,
    ) -> impl Future<Output = Result<Opened, FsError>> + Send;

    /// Create `name` in directory `fid` and open it with `mode`. The returned state replaces
    /// the fid's (it now names the new file; the old state is dropped without a clunk call).
    /// Default: "permission denied".
    fn create(
        &self,
        fid: &Self::Fid,
        name: &str,
        perm: u32,
        mode: u8,
    ) -> impl Future<Output = Result<(Self::Fid, Opened), FsError>> + Send {
        let _ = (fid, name, perm, mode);
        async { Err(FsError::from(errors::EPERM)) }
    }

    /// Read at most `count` bytes at `offset` of an open fid; empty means end of file.
    /// May wait indefinitely: the future is dropped if the request is flushed or the
    /// connection ends. For directories see [`DirReader`].
    fn read(
        &self,
        fid: &Self::Fid,
        offset: u64,
        count: u32,
    ) -> impl Future<Output = Result<Bytes, FsError>> + Send;

    /// Write `data` at `offset` of an open fid; returns the count written.
    /// Default: "permission denied".
    fn write(
        &self,
        fid: &Self::Fid,
        offset: u64,
        data: Bytes,
    ) -> impl Future<Output = Result<u32, FsError>> + Send {
        let _ = (fid, offset, data);
        async { Err(FsError::from(errors::EPERM)) }
    }

    /// The fid's directory entry. Default: "permission denied".
    fn stat(&self, fid: &Self::Fid) -> impl Future<Output = Result<Stat, FsError>> + Send {
        let _ = fid;
        async { Err(FsError::from(errors::EPERM)) }
    }

    /// Change the fid's directory entry. Default: "permission denied".
    fn wstat(
        &self,
        fid: &Self::Fid,
        stat: Stat,
    ) -> impl Future<Output = Result<(), FsError>> + Send {
        let _ = (fid, stat);
        async { Err(FsError::from(errors::EPERM)) }
    }

    /// Remove the fid's file (Tremove, or clunk of a fid opened ORCLOSE). The fid is clunked
    /// afterwards whatever this returns. Default: "permission denied".
    fn remove(&self, fid: &Self::Fid) -> impl Future<Output = Result<(), FsError>> + Send {
        let _ = fid;
        async { Err(FsError::from(errors::EPERM)) }
    }

    /// Clunk of a fid opened with ORCLOSE, just before [`FileSystem::clunk`]. Default:
    /// [`FileSystem::remove`], its error ignored. A file system whose ORCLOSE rule differs from
    /// Tremove's (Inferno's registry) overrides it.
    fn remove_on_close(&self, fid: &Self::Fid) -> impl Future<Output = ()> + Send {
        let removing = self.remove(fid);
        async move {
            let _ = removing.await;
        }
    }

    /// The fid is gone: Tclunk, Tremove, or the end of its connection (EOF, reset, error,
    /// a new Tversion). Called exactly once per fid. Default: nothing.
    fn clunk(&self, fid: &Self::Fid) -> impl Future<Output = ()> + Send {
        let _ = fid;
        async {}
    }
}
