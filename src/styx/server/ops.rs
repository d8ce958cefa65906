//! The fid-level requests: the fid table, open modes, and the calls into the file system.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::super::msg::{Body, IOHDRSZ, OEXEC, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE, Qid};
use super::conn::{Conn, lock};
use super::error::errors::*;
use super::{FileSystem, FsError};

/// One fid's framework-side facts beside the file system's state.
pub(super) struct FidEntry<T> {
    state: T,
    meta: Mutex<Meta>,
}

/// The qid's fields laid out flat beside the mode: 16 bytes where a `Qid` and the mode take 24,
/// in every fid (a registration holds one for its whole life).
#[derive(Clone, Copy)]
struct Meta {
    path: u64,
    version: u32,
    ty: u8,
    /// The open mode once opened.
    mode: Option<u8>,
}

impl Meta {
    fn new(qid: Qid, mode: Option<u8>) -> Meta {
        Meta {
            path: qid.path,
            version: qid.version,
            ty: qid.ty,
            mode,
        }
    }

    fn qid(self) -> Qid {
        Qid {
            ty: self.ty,
            version: self.version,
            path: self.path,
        }
    }
}

impl<F: FileSystem> Conn<F> {
    pub(super) fn entry(&self, fid: u32) -> Result<Arc<FidEntry<F::Fid>>, FsError> {
        lock(&self.fids)
            .get(&fid)
            .cloned()
            .ok_or(FsError::from(EBADFID))
    }

    /// Puts a new fid in the table, unless it is in use or the table is full.
    fn insert(
        &self,
        fid: u32,
        entry: FidEntry<F::Fid>,
        replace: bool,
    ) -> Result<(), FidEntry<F::Fid>> {
        let mut fids = lock(&self.fids);
        let full = fids.len() >= self.limits.max_fids;
        if !replace && (fids.contains_key(&fid) || full) {
            if full {
                crate::metrics::limit_hit("9p_fids");
            }
            if full && !self.fid_cap_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "9p {}: {} fids, the most a connection may hold (--max-fids): more refused",
                    self.ctx.peer,
                    self.limits.max_fids
                );
            }
            return Err(entry);
        }
        fids.insert(fid, Arc::new(entry));
        Ok(())
    }

    /// Runs the remove (if ORCLOSE) and clunk hooks so that a flush or connection end cannot
    /// cut them short: each fid gets its clunk call exactly once. Hooks that finish at once
    /// (the usual case) run right here; the others go on in a task of their own.
    pub(super) async fn clunk_entry(&self, e: Arc<FidEntry<F::Fid>>) {
        let fs = self.fs.clone();
        let mut job = Box::pin(async move {
            let mode = lock(&e.meta).mode;
            if mode.is_some_and(|m| m & ORCLOSE != 0) {
                fs.remove_on_close(&e.state).await;
            }
            fs.clunk(&e.state).await;
        });
        // No await comes between this poll and the spawn, so nothing can cancel the job
        // half done.
        if futures_util::poll!(&mut job).is_ready() {
            return;
        }
        let _ = tokio::spawn(job).await;
    }

    /// The iounit to send for an [`super::Opened::iounit`].
    fn iounit(&self, asked: u32) -> u32 {
        match asked {
            super::IOUNIT_MSIZE => self.msize().saturating_sub(IOHDRSZ),
            n => n,
        }
    }

    fn too_many(&self, fid: u32) -> FsError {
        if lock(&self.fids).contains_key(&fid) {
            FsError::from(EINUSE)
        } else {
            FsError::from(ETOOMANYFIDS)
        }
    }

    pub(super) async fn handle(&self, body: Body) -> Result<Body, FsError> {
        match body {
            // No authentication at this layer, so the afid is ignored, as styxservers does
            // (an authenticating transport sets ctx.authenticated_user instead).
            Body::Tattach {
                fid,
                afid: _,
                uname,
                aname,
            } => {
                if lock(&self.fids).contains_key(&fid) {
                    return Err(EINUSE.into());
                }
                let user = self.ctx.authenticated_user.as_deref().unwrap_or(&uname);
                let (state, qid) = self.fs.attach(&self.ctx, user, &aname).await?;
                let entry = FidEntry {
                    state,
                    meta: Mutex::new(Meta::new(qid, None)),
                };
                if let Err(entry) = self.insert(fid, entry, false) {
                    self.fs.clunk(&entry.state).await;
                    return Err(self.too_many(fid));
                }
                Ok(Body::Rattach { qid })
            }
            Body::Twalk {
                fid,
                newfid,
                wnames,
            } => self.walk(fid, newfid, wnames).await,
            Body::Topen { fid, mode } => {
                let e = self.entry(fid)?;
                let meta = *lock(&e.meta);
                check_mode(meta, mode)?;
                let opened = self.fs.open(&e.state, mode).await?;
                *lock(&e.meta) = Meta::new(opened.qid, Some(mode));
                Ok(Body::Ropen {
                    qid: opened.qid,
                    iounit: self.iounit(opened.iounit),
                })
            }
            Body::Tcreate {
                fid,
                name,
                perm,
                mode,
            } => {
                let e = self.entry(fid)?;
                let meta = *lock(&e.meta);
                if meta.mode.is_some() {
                    return Err(EOPEN.into());
                }
                if !meta.qid().is_dir() {
                    return Err(ENOTDIR.into());
                }
                if name == "." || name == ".." {
                    return Err(EDOT.into());
                }
                if name.is_empty() || name.contains('/') {
                    return Err(ENAME.into());
                }
                let (state, opened) = self.fs.create(&e.state, &name, perm, mode).await?;
                let meta = Meta::new(opened.qid, Some(mode));
                let _ = self.insert(
                    fid,
                    FidEntry {
                        state,
                        meta: Mutex::new(meta),
                    },
                    true,
                );
                Ok(Body::Rcreate {
                    qid: opened.qid,
                    iounit: self.iounit(opened.iounit),
                })
            }
            Body::Tread { fid, offset, count } => self.read(fid, offset, count).await,
            Body::Twrite { fid, offset, data } => {
                let e = self.entry(fid)?;
                match lock(&e.meta).mode {
                    None => return Err(ENOTOPEN.into()),
                    Some(m) if m & 3 != OWRITE && m & 3 != ORDWR => return Err(EACCESS.into()),
                    Some(_) => {}
                }
                let len = data.len() as u32;
                let n = self.fs.write(&e.state, offset, data).await?;
                Ok(Body::Rwrite { count: n.min(len) })
            }
            Body::Tclunk { fid } => {
                let e = lock(&self.fids)
                    .remove(&fid)
                    .ok_or(FsError::from(EBADFID))?;
                self.clunk_entry(e).await;
                Ok(Body::Rclunk)
            }
            Body::Tremove { fid } => {
                let e = lock(&self.fids)
                    .remove(&fid)
                    .ok_or(FsError::from(EBADFID))?;
                let fs = self.fs.clone();
                // Detached like clunk: remove always clunks the fid, flushed or not.
                let job = tokio::spawn(async move {
                    let r = fs.remove(&e.state).await;
                    fs.clunk(&e.state).await;
                    r
                });
                job.await.map_err(|_| FsError::from(EPERM))??;
                Ok(Body::Rremove)
            }
            Body::Tstat { fid } => {
                let e = self.entry(fid)?;
                Ok(Body::Rstat {
                    stat: self.fs.stat(&e.state).await?,
                })
            }
            Body::Twstat { fid, stat } => {
                let e = self.entry(fid)?;
                self.fs.wstat(&e.state, stat).await?;
                Ok(Body::Rwstat)
            }
            _ => Err(EBADARG.into()),
        }
    }

    /// A Tread. Apart from [`Conn::handle`], so that a read that waits (an `event` or feed read,
    /// held until something changes) keeps only its own state, not that of every request.
    pub(super) async fn read(&self, fid: u32, offset: u64, count: u32) -> Result<Body, FsError> {
        let e = self.entry(fid)?;
        match lock(&e.meta).mode {
            None => return Err(ENOTOPEN.into()),
            Some(m) if m & 3 == OWRITE => return Err(EACCESS.into()),
            Some(_) => {}
        }
        // styxservers' canread: a count beyond one message is an error, not clipped.
        if count > self.msize().saturating_sub(IOHDRSZ) {
            return Err(ECOUNT.into());
        }
        let mut data = self.fs.read(&e.state, offset, count).await?;
        data.truncate(count as usize);
        Ok(Body::Rread { data })
    }

    async fn walk(&self, fid: u32, newfid: u32, wnames: Vec<String>) -> Result<Body, FsError> {
        let e = self.entry(fid)?;
        let meta = *lock(&e.meta);
        if meta.mode.is_some() {
            return Err(EOPEN.into());
        }
        if newfid != fid && lock(&self.fids).contains_key(&newfid) {
            return Err(EINUSE.into());
        }
        let mut cur: Option<F::Fid> = None;
        let mut qids = Vec::with_capacity(wnames.len());
        for (i, name) in wnames.iter().enumerate() {
            let from = cur.as_ref().unwrap_or(&e.state);
            match self.fs.walk(from, name).await {
                Ok((s, q)) => {
                    cur = Some(s);
                    qids.push(q);
                }
                Err(err) if i == 0 => return Err(err),
                // A partial walk: newfid is not touched.
                Err(_) => return Ok(Body::Rwalk { wqids: qids }),
            }
        }
        let qid = qids.last().copied().unwrap_or(meta.qid());
        let state = match cur {
            Some(s) => s,
            None if newfid == fid => return Ok(Body::Rwalk { wqids: qids }),
            None => self.fs.clone_fid(&e.state),
        };
        let entry = FidEntry {
            state,
            meta: Mutex::new(Meta::new(qid, None)),
        };
        if let Err(entry) = self.insert(newfid, entry, newfid == fid) {
            self.fs.clunk(&entry.state).await;
            return Err(self.too_many(newfid));
        }
        Ok(Body::Rwalk { wqids: qids })
    }
}

fn check_mode(meta: Meta, mode: u8) -> Result<(), FsError> {
    if meta.mode.is_some() {
        return Err(EOPEN.into());
    }
    // styxservers' openmode: bits beyond these are a "bad argument".
    if mode & !(3 | OTRUNC | ORCLOSE) != 0 {
        return Err(EBADARG.into());
    }
    if meta.qid().is_dir() && (mode & OTRUNC != 0 || !matches!(mode & 3, OREAD | OEXEC)) {
        return Err(EPERM.into());
    }
    Ok(())
}
