//! A small in-memory file system served by our 9P server in tests: directories, files,
//! create/remove/wstat, and a file `block` whose reads wait until flushed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use registries::styx::server::{ConnCtx, DirReader, FileSystem, FsError, Opened, errors};
use registries::styx::{DMDIR, OTRUNC, QTDIR, QTFILE, Qid, Stat};

struct Node {
    name: String,
    parent: u64,
    mode: u32,
    data: Vec<u8>,
    children: BTreeMap<String, u64>,
    version: u32,
}

/// The tree and some counters the tests look at.
pub struct RamFs {
    nodes: Mutex<BTreeMap<u64, Node>>,
    next: AtomicUsize,
    /// Clunk hook calls so far.
    pub clunks: AtomicUsize,
    /// Reads of `block` that were cancelled (their future dropped).
    pub cancelled_reads: AtomicUsize,
    /// Users attach saw.
    pub users: Mutex<Vec<String>>,
    /// While false, clunk hooks wait (see [`RamFs::hold_clunks`]).
    clunk_gate: tokio::sync::watch::Sender<bool>,
}

/// Per-fid state: the node, the attach user, and a directory snapshot.
pub struct RamFid {
    path: u64,
    user: String,
    dir: DirReader,
}

/// Counts a read of `block` as cancelled when dropped before completion.
struct CancelGuard<'a>(&'a AtomicUsize);

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl RamFs {
    /// A tree with `/hello` ("hello, world\n"), `/dir/` and `/block`.
    pub fn new() -> Arc<RamFs> {
        let fs = RamFs {
            nodes: Mutex::new(BTreeMap::new()),
            next: AtomicUsize::new(1),
            clunks: AtomicUsize::new(0),
            cancelled_reads: AtomicUsize::new(0),
            users: Mutex::new(Vec::new()),
            clunk_gate: tokio::sync::watch::Sender::new(true),
        };
        fs.nodes
            .lock()
            .unwrap()
            .insert(0, Node::new("/", 0, DMDIR | 0o777));
        fs.add(0, "hello", 0o666, b"hello, world\n");
        fs.add(0, "dir", DMDIR | 0o777, b"");
        fs.add(0, "block", 0o444, b"");
        Arc::new(fs)
    }

    /// Makes clunk hooks wait until [`RamFs::release_clunks`] (a file system whose clunk takes
    /// time).
    pub fn hold_clunks(&self) {
        self.clunk_gate.send_replace(false);
    }

    /// Lets waiting and later clunk hooks finish.
    pub fn release_clunks(&self) {
        self.clunk_gate.send_replace(true);
    }

    /// Adds a node under `parent`, returning its path.
    pub fn add(&self, parent: u64, name: &str, mode: u32, data: &[u8]) -> u64 {
        let path = self.next.fetch_add(1, Ordering::SeqCst) as u64;
        let mut nodes = self.nodes.lock().unwrap();
        let mut n = Node::new(name, parent, mode);
        n.data = data.to_vec();
        nodes.insert(path, n);
        if let Some(p) = nodes.get_mut(&parent) {
            p.children.insert(name.to_string(), path);
        }
        path
    }

    /// The contents of the file at `/name`, if any.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let nodes = self.nodes.lock().unwrap();
        let path = nodes.get(&0)?.children.get(name)?;
        Some(nodes.get(path)?.data.clone())
    }

    fn qid(&self, path: u64) -> Result<Qid, FsError> {
        let nodes = self.nodes.lock().unwrap();
        let n = nodes.get(&path).ok_or(FsError::from(errors::ENOTFOUND))?;
        Ok(n.qid(path))
    }

    fn stat_of(nodes: &BTreeMap<u64, Node>, path: u64) -> Option<Stat> {
        let n = nodes.get(&path)?;
        Some(Stat {
            qid: n.qid(path),
            mode: n.mode,
            length: if n.mode & DMDIR != 0 {
                0
            } else {
                n.data.len() as u64
            },
            name: n.name.clone(),
            uid: "ram".into(),
            gid: "ram".into(),
            muid: "ram".into(),
            ..Stat::default()
        })
    }
}

impl Node {
    fn new(name: &str, parent: u64, mode: u32) -> Node {
        Node {
            name: name.into(),
            parent,
            mode,
            data: Vec::new(),
            children: BTreeMap::new(),
            version: 0,
        }
    }
    fn qid(&self, path: u64) -> Qid {
        let ty = if self.mode & DMDIR != 0 {
            QTDIR
        } else {
            QTFILE
        };
        Qid {
            ty,
            version: self.version,
            path,
        }
    }
}

impl FileSystem for RamFs {
    type Fid = RamFid;

    async fn attach(
        &self,
        _ctx: &ConnCtx,
        uname: &str,
        _aname: &str,
    ) -> Result<(RamFid, Qid), FsError> {
        self.users.lock().unwrap().push(uname.to_string());
        Ok((
            RamFid {
                path: 0,
                user: uname.into(),
                dir: DirReader::new(),
            },
            self.qid(0)?,
        ))
    }

    async fn walk(&self, fid: &RamFid, name: &str) -> Result<(RamFid, Qid), FsError> {
        let nodes = self.nodes.lock().unwrap();
        let n = nodes
            .get(&fid.path)
            .ok_or(FsError::from(errors::ENOTFOUND))?;
        if n.mode & DMDIR == 0 {
            return Err(errors::ENOTDIR.into());
        }
        let path = match name {
            ".." => n.parent,
            _ => *n
                .children
                .get(name)
                .ok_or(FsError::from(errors::ENOTFOUND))?,
        };
        let qid = nodes
            .get(&path)
            .map(|c| c.qid(path))
            .ok_or(FsError::from(errors::ENOTFOUND))?;
        Ok((
            RamFid {
                path,
                user: fid.user.clone(),
                dir: DirReader::new(),
            },
            qid,
        ))
    }

    fn clone_fid(&self, fid: &RamFid) -> RamFid {
        RamFid {
            path: fid.path,
            user: fid.user.clone(),
            dir: DirReader::new(),
        }
    }

    async fn open(&self, fid: &RamFid, mode: u8) -> Result<Opened, FsError> {
        let mut nodes = self.nodes.lock().unwrap();
        let n = nodes
            .get_mut(&fid.path)
            .ok_or(FsError::from(errors::ENOTFOUND))?;
        if mode & OTRUNC != 0 {
            n.data.clear();
            n.version += 1;
        }
        Ok(Opened {
            qid: n.qid(fid.path),
            iounit: 0,
        })
    }

    async fn create(
        &self,
        fid: &RamFid,
        name: &str,
        perm: u32,
        _mode: u8,
    ) -> Result<(RamFid, Opened), FsError> {
        if self
            .nodes
            .lock()
            .unwrap()
            .get(&fid.path)
            .is_some_and(|d| d.children.contains_key(name))
        {
            return Err(errors::EEXISTS.into());
        }
        let path = self.add(fid.path, name, perm, b"");
        let qid = self.qid(path)?;
        Ok((
            RamFid {
                path,
                user: fid.user.clone(),
                dir: DirReader::new(),
            },
            Opened { qid, iounit: 0 },
        ))
    }

    async fn read(&self, fid: &RamFid, offset: u64, count: u32) -> Result<Bytes, FsError> {
        let is_block = {
            let nodes = self.nodes.lock().unwrap();
            let n = nodes
                .get(&fid.path)
                .ok_or(FsError::from(errors::ENOTFOUND))?;
            if n.mode & DMDIR != 0 {
                let kids: Vec<u64> = n.children.values().copied().collect();
                return Ok(fid.dir.read(offset, count, || {
                    kids.iter()
                        .filter_map(|k| RamFs::stat_of(&nodes, *k))
                        .collect()
                }));
            }
            if n.name != "block" {
                let start = (offset as usize).min(n.data.len());
                let end = (start + count as usize).min(n.data.len());
                return Ok(Bytes::copy_from_slice(&n.data[start..end]));
            }
            true
        };
        if is_block {
            let _guard = CancelGuard(&self.cancelled_reads);
            std::future::pending::<()>().await;
        }
        Ok(Bytes::new())
    }

    async fn write(&self, fid: &RamFid, offset: u64, data: Bytes) -> Result<u32, FsError> {
        let mut nodes = self.nodes.lock().unwrap();
        let n = nodes
            .get_mut(&fid.path)
            .ok_or(FsError::from(errors::ENOTFOUND))?;
        let end = offset as usize + data.len();
        if n.data.len() < end {
            n.data.resize(end, 0);
        }
        n.data[offset as usize..end].copy_from_slice(&data);
        n.version += 1;
        Ok(data.len() as u32)
    }

    async fn stat(&self, fid: &RamFid) -> Result<Stat, FsError> {
        RamFs::stat_of(&self.nodes.lock().unwrap(), fid.path)
            .ok_or(FsError::from(errors::ENOTFOUND))
    }

    async fn wstat(&self, fid: &RamFid, stat: Stat) -> Result<(), FsError> {
        let mut nodes = self.nodes.lock().unwrap();
        let n = nodes
            .get_mut(&fid.path)
            .ok_or(FsError::from(errors::ENOTFOUND))?;
        if stat.length != u64::MAX {
            n.data.resize(stat.length as usize, 0);
        }
        if stat.mode != u32::MAX {
            n.mode = (n.mode & DMDIR) | (stat.mode & !DMDIR);
        }
        if !stat.name.is_empty() && stat.name != n.name {
            let (old, parent) = (std::mem::replace(&mut n.name, stat.name.clone()), n.parent);
            if let Some(p) = nodes.get_mut(&parent) {
                p.children.remove(&old);
                p.children.insert(stat.name, fid.path);
            }
        }
        Ok(())
    }

    async fn remove(&self, fid: &RamFid) -> Result<(), FsError> {
        let mut nodes = self.nodes.lock().unwrap();
        if fid.path == 0 {
            return Err(errors::EPERM.into());
        }
        let n = nodes
            .remove(&fid.path)
            .ok_or(FsError::from(errors::ENOTFOUND))?;
        if let Some(p) = nodes.get_mut(&n.parent) {
            p.children.remove(&n.name);
        }
        Ok(())
    }

    async fn clunk(&self, _fid: &RamFid) {
        let mut gate = self.clunk_gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
        self.clunks.fetch_add(1, Ordering::SeqCst);
    }
}
