//! A client fid: a handle on one file of the server, clunked when dropped.

use bytes::Bytes;

use super::client::{Cleanup, Client};
use super::client_core::io_size;
use super::codec::decode_dir;
use super::error::{Error, Result};
use super::msg::{Body, MAXWELEM, Qid, Stat};

/// One fid on a [`Client`]'s connection. Dropping it clunks it in the background; use
/// [`Fid::clunk`] to wait for the Rclunk. Several tasks may read and write through `&Fid`
/// at once.
#[derive(Debug)]
pub struct Fid {
    client: Client,
    fid: u32,
    qid: Qid,
    iounit: u32,
    open: bool,
    /// False once clunk or remove has taken over the fid.
    live: bool,
}

impl Fid {
    pub(crate) fn new(client: Client, fid: u32, qid: Qid) -> Fid {
        Fid {
            client,
            fid,
            qid,
            iounit: 0,
            open: false,
            live: true,
        }
    }

    /// The fid's number on the wire.
    pub fn number(&self) -> u32 {
        self.fid
    }

    /// The qid the last walk, attach, open or create returned.
    pub fn qid(&self) -> Qid {
        self.qid
    }

    /// The iounit the server gave at open (0: none given).
    pub fn iounit(&self) -> u32 {
        self.iounit
    }

    /// Whether the fid has been opened or created.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The connection this fid belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Largest data of one read or write: the iounit, at most msize − IOHDRSZ.
    pub fn io_size(&self) -> u32 {
        io_size(self.client.inner.msize, self.iounit)
    }

    async fn walk_once(&self, from: u32, to: u32, names: &[String]) -> Result<Vec<Qid>> {
        let cleanup = if from == to {
            Cleanup::None
        } else {
            Cleanup::NewFid(to)
        };
        let body = Body::Twalk {
            fid: from,
            newfid: to,
            wnames: names.to_vec(),
        };
        match self.client.inner.rpc(body, cleanup).await? {
            Body::Rwalk { wqids } if wqids.len() <= names.len() => Ok(wqids),
            other => Err(Error::Unexpected(other.name())),
        }
    }

    /// Walks from this fid through `names` (any number; sent in walks of 16) to a new fid.
    /// No names: a clone of this fid. A walk that stops short gives [`Error::NotFound`]
    /// naming the element that failed; an error on the first element is the server's.
    pub async fn walk<S: AsRef<str>>(&self, names: &[S]) -> Result<Fid> {
        let names: Vec<String> = names.iter().map(|s| s.as_ref().to_owned()).collect();
        let inner = &self.client.inner;
        let newfid = inner.alloc_fid()?;
        let mut chunks = names.chunks(MAXWELEM);
        let first: &[String] = chunks.next().unwrap_or(&[]);
        let qids = match self.walk_once(self.fid, newfid, first).await {
            Ok(q) => q,
            Err(e) => {
                if !matches!(e, Error::Disconnected(_)) {
                    inner.free_fid(newfid);
                }
                return Err(e);
            }
        };
        if qids.len() < first.len() {
            inner.free_fid(newfid);
            return Err(Error::NotFound(first[qids.len()].clone()));
        }
        let mut fid = Fid::new(
            self.client.clone(),
            newfid,
            qids.last().copied().unwrap_or(self.qid),
        );
        let mut done = first.len();
        for chunk in chunks {
            // Walking a fid onto itself: a failure leaves it where it was; dropping clunks it.
            let qids = fid.walk_once(newfid, newfid, chunk).await?;
            if qids.len() < chunk.len() {
                return Err(Error::NotFound(names[done + qids.len()].clone()));
            }
            done += chunk.len();
            if let Some(q) = qids.last() {
                fid.qid = *q;
            }
        }
        Ok(fid)
    }

    /// A second fid on the same file (a walk of no names).
    pub async fn try_clone(&self) -> Result<Fid> {
        self.walk::<&str>(&[]).await
    }

    /// Opens the fid with `mode` (OREAD, OWRITE, ORDWR, OEXEC, with OTRUNC/ORCLOSE).
    pub async fn open(&mut self, mode: u8) -> Result<()> {
        match self
            .client
            .inner
            .rpc(
                Body::Topen {
                    fid: self.fid,
                    mode,
                },
                Cleanup::None,
            )
            .await?
        {
            Body::Ropen { qid, iounit } => {
                self.qid = qid;
                self.iounit = iounit;
                self.open = true;
                Ok(())
            }
            other => Err(Error::Unexpected(other.name())),
        }
    }

    /// Creates `name` with `perm` in this directory and opens it with `mode`; the fid then
    /// names the new file.
    pub async fn create(&mut self, name: &str, perm: u32, mode: u8) -> Result<()> {
        let body = Body::Tcreate {
            fid: self.fid,
            name: name.into(),
            perm,
            mode,
        };
        match self.client.inner.rpc(body, Cleanup::None).await? {
            Body::Rcreate { qid, iounit } => {
                self.qid = qid;
                self.iounit = iounit;
                self.open = true;
                Ok(())
            }
            other => Err(Error::Unexpected(other.name())),
        }
    }

    /// One read of at most `count` bytes (clipped to [`Fid::io_size`]) at `offset`.
    /// Empty: end of file.
    pub async fn read(&self, offset: u64, count: u32) -> Result<Bytes> {
        let count = count.min(self.io_size());
        match self
            .client
            .inner
            .rpc(
                Body::Tread {
                    fid: self.fid,
                    offset,
                    count,
                },
                Cleanup::None,
            )
            .await?
        {
            Body::Rread { data } => Ok(data),
            other => Err(Error::Unexpected(other.name())),
        }
    }

    /// Reads from offset 0 until an empty read.
    pub async fn read_all(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let chunk = self.read(out.len() as u64, self.io_size()).await?;
            if chunk.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
        }
    }

    /// Reads a whole directory and decodes its entries.
    pub async fn read_dir(&self) -> Result<Vec<Stat>> {
        let data = self.read_all().await?;
        Ok(decode_dir(&data)?)
    }

    /// Writes `data` at `offset` in writes of at most [`Fid::io_size`]; returns the bytes
    /// written, fewer than asked only if the server wrote short.
    pub async fn write(&self, offset: u64, data: &[u8]) -> Result<usize> {
        let mut done = 0usize;
        loop {
            let end = (done + self.io_size() as usize).min(data.len());
            let chunk = Bytes::copy_from_slice(data.get(done..end).unwrap_or_default());
            let asked = chunk.len();
            let body = Body::Twrite {
                fid: self.fid,
                offset: offset + done as u64,
                data: chunk,
            };
            let n = match self.client.inner.rpc(body, Cleanup::None).await? {
                Body::Rwrite { count } => (count as usize).min(asked),
                other => return Err(Error::Unexpected(other.name())),
            };
            done += n;
            if done >= data.len() || n < asked {
                return Ok(done);
            }
        }
    }

    /// The file's directory entry.
    pub async fn stat(&self) -> Result<Stat> {
        match self
            .client
            .inner
            .rpc(Body::Tstat { fid: self.fid }, Cleanup::None)
            .await?
        {
            Body::Rstat { stat } => Ok(stat),
            other => Err(Error::Unexpected(other.name())),
        }
    }

    /// Changes the directory entry (start from [`Stat::dont_touch`]).
    pub async fn wstat(&self, stat: &Stat) -> Result<()> {
        match self
            .client
            .inner
            .rpc(
                Body::Twstat {
                    fid: self.fid,
                    stat: stat.clone(),
                },
                Cleanup::None,
            )
            .await?
        {
            Body::Rwstat => Ok(()),
            other => Err(Error::Unexpected(other.name())),
        }
    }

    /// Removes the file; the fid is clunked whatever the answer.
    pub async fn remove(mut self) -> Result<()> {
        self.end(|fid| Body::Tremove { fid }).await
    }

    /// Clunks the fid and waits for the Rclunk.
    pub async fn clunk(mut self) -> Result<()> {
        self.end(|fid| Body::Tclunk { fid }).await
    }

    async fn end(&mut self, body: impl FnOnce(u32) -> Body) -> Result<()> {
        self.live = false;
        let inner = self.client.inner.clone();
        let r = inner.rpc(body(self.fid), Cleanup::EndsFid(self.fid)).await;
        match r {
            Ok(_) | Err(Error::Remote(_)) => inner.free_fid(self.fid),
            Err(_) => {}
        }
        r.map(|_| ())
    }
}

impl Drop for Fid {
    fn drop(&mut self) {
        if self.live {
            self.client.inner.clunk_background(self.fid);
        }
    }
}
