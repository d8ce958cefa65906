//! The registry's operations for a front-end in this process (the TCP shim of `registry serve`),
//! as the 9P file tree performs them, without 9P in between: a find is a read of `find`, a
//! registration an open of `new` with its fid, a change a wake of `event`.

use super::catalog::FidRef;
use super::fs::{RegistryFs, now};
use super::index::EntryId;
use super::server::Server;
use crate::wire::Diagnostic;
use std::sync::Arc;
use tokio::sync::watch;

impl Server {
    /// The text a read of `find` gives after `query` was written to it.
    pub(crate) fn find_text(&self, query: &[(String, String)]) -> bytes::Bytes {
        self.fs().catalog().find_answer(query)
    }

    /// Opens `new` as `owner` and writes `line` to it, as a 9P client's first write does; the
    /// service lives as long as the returned [`NewFile`] (unless it persists).
    pub(crate) async fn open_new(&self, owner: &str, line: &str) -> Result<NewFile, Diagnostic> {
        let fs = Arc::clone(self.fs());
        let token = fs.token();
        let id = fs.catalog().create(owner, Some(token), now());
        let epoch = fs.session_epoch();
        let file = NewFile {
            fs,
            id,
            token,
            epoch,
        };
        file.write(line).await?;
        Ok(file)
    }

    /// Resolves at the store's next session expiry (with etcd; never in memory): what a
    /// front-end in this process races its waits against, since an expiry ends every client's
    /// wait with no answer.
    pub(crate) fn next_expiry(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let fs = self.fs();
        fs.session_expiry(fs.session_epoch())
    }

    /// The change counter, as `event` readers see it: it moves on every visible change.
    pub(crate) fn changes(&self) -> watch::Receiver<u32> {
        self.fs().catalog().subscribe()
    }
}

/// An open `new` file: the registration. Dropping it is the clunk that unregisters.
#[derive(Debug)]
pub(crate) struct NewFile {
    fs: Arc<RegistryFs>,
    id: EntryId,
    token: FidRef,
    /// The store's session epoch when it was made: a later expiry ends it.
    epoch: u64,
}

impl NewFile {
    /// A further write to the registration (`attr val ...`).
    pub(crate) async fn write(&self, text: &str) -> Result<(), Diagnostic> {
        self.fs.write_service(self.id, text).await
    }

    /// Resolves when the registration may be gone from the store behind it (a session expiry
    /// with etcd: spec/etcd.md); never in memory.
    pub(crate) fn lost(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.fs.session_expiry(self.epoch)
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        let (fs, id, token) = (Arc::clone(&self.fs), self.id, self.token);
        if fs.in_memory() {
            fs.catalog().release(id, token, false);
        } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { fs.release_service(id, token, false).await });
        }
    }
}
