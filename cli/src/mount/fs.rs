//! The registry's 9P tree as a FUSE file system, operation for operation: a FUSE open is a
//! walk and an open of a new fid, its release the clunk, reads and writes go straight through
//! (direct I/O, nothing cached, attributes and entries valid for no time at all), so what a
//! program sees is what registry(4) says at that moment, and an open `new` is a registration.
//!
//! fuser calls these methods on its own thread; each one that talks to the registry runs as a
//! tokio task that replies when the registry has answered, so a blocked `event` read holds up
//! nothing else.

use super::errno::errno;
use super::link::Link;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyWrite, Request, WriteFlags,
};
use registries::styx::{DMDIR, Fid, ORDWR, OREAD, OWRITE, Stat};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

/// Entries and attributes are valid for no time: a service may go at any moment.
const NO_CACHE: Duration = Duration::ZERO;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Inode numbers for the names seen, stable for the life of the mount (the root is 1).
#[derive(Default)]
struct Inodes {
    by_name: HashMap<String, u64>,
    by_ino: HashMap<u64, String>,
}

impl Inodes {
    fn ino(&mut self, name: &str) -> u64 {
        if let Some(&ino) = self.by_name.get(name) {
            return ino;
        }
        let ino = self.by_ino.len() as u64 + 2;
        self.by_name.insert(name.to_string(), ino);
        self.by_ino.insert(ino, name.to_string());
        ino
    }
}

/// An open file: its own fid, on the connection it was opened through.
struct OpenFile {
    fid: Fid,
    name: String,
    /// Reads in progress, so that a release can end them (each dropped read sends Tflush).
    reads: Mutex<HashMap<u64, AbortHandle>>,
}

/// An open directory: its listing, read once at the open.
struct OpenDir {
    entries: Vec<(u64, FileType, String)>,
}

enum Open {
    File(Arc<OpenFile>),
    Dir(Arc<OpenDir>),
}

/// What every task needs.
struct Shared {
    link: Link,
    inodes: Mutex<Inodes>,
    open: Mutex<HashMap<u64, Open>>,
    next_handle: AtomicU64,
    next_read: AtomicU64,
    /// The mounting user, for the owner of files whose registry owner has no account here.
    uid: u32,
    gid: u32,
}

/// The file system fuser serves.
pub struct RegistryFs {
    rt: Handle,
    shared: Arc<Shared>,
}

impl RegistryFs {
    /// The registry behind `link`, its tasks run on `rt`.
    pub fn new(link: Link, rt: Handle) -> RegistryFs {
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        RegistryFs {
            rt,
            shared: Arc::new(Shared {
                link,
                inodes: Mutex::default(),
                open: Mutex::default(),
                next_handle: AtomicU64::new(1),
                next_read: AtomicU64::new(1),
                uid,
                gid,
            }),
        }
    }

    fn spawn<F>(&self, f: impl FnOnce(Arc<Shared>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn(f(self.shared.clone()));
    }
}

impl Shared {
    async fn root(&self, what: &str) -> Result<Arc<Fid>, Errno> {
        self.link.root().await.map_err(|e| {
            tracing::warn!("mount: {what}: {}", e.0);
            Errno::EIO
        })
    }

    fn name_of(&self, ino: INodeNo) -> Option<String> {
        lock(&self.inodes).by_ino.get(&u64::from(ino)).cloned()
    }

    /// The attributes of `name` (the root when `None`).
    async fn stat(&self, name: Option<&str>) -> Result<FileAttr, Errno> {
        let what = format!("stat {}", name.unwrap_or("/"));
        let root = self.root(&what).await?;
        let st = match name {
            None => root.stat().await,
            Some(n) => match root.walk(&[n]).await {
                Ok(f) => f.stat().await,
                Err(e) => Err(e),
            },
        }
        .map_err(|e| errno(&what, &e))?;
        let ino = match name {
            None => 1,
            Some(n) => lock(&self.inodes).ino(n),
        };
        Ok(self.attr(ino, &st))
    }

    fn attr(&self, ino: u64, st: &Stat) -> FileAttr {
        let dir = st.mode & DMDIR != 0;
        let time = |s: u32| UNIX_EPOCH + Duration::from_secs(u64::from(s));
        let (uid, gid) = account(&st.uid).unwrap_or((self.uid, self.gid));
        FileAttr {
            ino: INodeNo(ino),
            size: st.length,
            blocks: st.length.div_ceil(512),
            atime: time(st.atime),
            mtime: time(st.mtime),
            ctime: time(st.mtime),
            crtime: time(st.mtime),
            kind: if dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: (st.mode & 0o777) as u16,
            nlink: if dir { 2 } else { 1 },
            uid,
            gid,
            rdev: 0,
            flags: 0,
            blksize: 8192,
        }
    }

    fn file(&self, fh: FileHandle) -> Option<Arc<OpenFile>> {
        match lock(&self.open).get(&u64::from(fh)) {
            Some(Open::File(f)) => Some(f.clone()),
            _ => None,
        }
    }
}

impl OpenFile {
    /// EIO when the connection this file was opened through is gone: what it held went with it.
    fn check_connected(&self, what: &str) -> Result<(), Errno> {
        if self.fid.client().is_closed() {
            tracing::warn!(
                "mount: {what}: {} was open through a connection that was lost{}",
                self.name,
                if self.name == "new" {
                    ": its registration is gone"
                } else {
                    ""
                }
            );
            return Err(Errno::EIO);
        }
        Ok(())
    }
}

/// Up to `size` bytes at `offset`: as many 9P reads of the fid's I/O size as it takes, one
/// after the other, until one comes back short (the end of the file, or a read that returned
/// what there was, as `event` does). One FUSE read (up to 128 KB) then costs one trip through
/// the kernel rather than one per 8 KB.
async fn fill(fid: &Fid, offset: u64, size: u32) -> registries::styx::Result<Vec<u8>> {
    let chunk = fid.io_size().max(1);
    let mut out = Vec::new();
    while out.len() < size as usize {
        let want = chunk.min(size - out.len() as u32);
        let data = fid.read(offset + out.len() as u64, want).await?;
        let short = data.len() < want as usize;
        out.extend_from_slice(&data);
        if short || data.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// The uid and gid of the local account named `user`, if there is one.
fn account(user: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(user).ok()?;
    // SAFETY: getpwnam with a valid C string; the fields are copied out at once. The mount
    // looks users up from one thread at a time per call, and nothing else here uses getpw*.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return None;
        }
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// The 9P open mode for FUSE's open flags (`O_TRUNC` has no meaning for a registry's files).
fn mode(flags: OpenFlags) -> u8 {
    match flags.acc_mode() {
        OpenAccMode::O_RDONLY => OREAD,
        OpenAccMode::O_WRONLY => OWRITE,
        OpenAccMode::O_RDWR => ORDWR,
    }
}

impl Filesystem for RegistryFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str().map(str::to_string) else {
            return reply.error(Errno::ENOENT);
        };
        if u64::from(parent) != 1 {
            return reply.error(Errno::ENOENT);
        }
        self.spawn(|sh| async move {
            match sh.stat(Some(&name)).await {
                Ok(attr) => reply.entry(&NO_CACHE, &attr, Generation(0)),
                Err(e) => reply.error(e),
            }
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let open = fh.and_then(|fh| self.shared.file(fh));
        let name = self.shared.name_of(ino);
        self.spawn(|sh| async move {
            // An open file answers for itself: its fid may outlive the name's walk.
            if let Some(f) = open {
                let r = f.fid.stat().await.map_err(|e| errno("stat", &e));
                return match r {
                    Ok(st) => reply.attr(&NO_CACHE, &sh.attr(u64::from(ino), &st)),
                    Err(e) => reply.error(e),
                };
            }
            let r = match (u64::from(ino), name) {
                (1, _) => sh.stat(None).await,
                (_, Some(n)) => sh.stat(Some(&n)).await,
                _ => Err(Errno::ENOENT),
            };
            match r {
                Ok(attr) => reply.attr(&NO_CACHE, &attr),
                Err(e) => reply.error(e),
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // The shell's `>` truncates; a registry's files have nothing to truncate, so the
        // attributes are what they are.
        self.getattr(req, ino, fh, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some(name) = self.shared.name_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        self.spawn(|sh| async move {
            let what = format!("open {name}");
            let root = match sh.root(&what).await {
                Ok(root) => root,
                Err(e) => return reply.error(e),
            };
            let opened = async {
                let mut fid = root.walk(&[name.as_str()]).await?;
                fid.open(mode(flags)).await?;
                Ok::<_, registries::styx::Error>(fid)
            };
            match opened.await {
                Ok(fid) => {
                    let fh = sh.next_handle.fetch_add(1, Ordering::Relaxed);
                    let file = OpenFile {
                        fid,
                        name,
                        reads: Mutex::default(),
                    };
                    lock(&sh.open).insert(fh, Open::File(Arc::new(file)));
                    reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
                }
                Err(e) => reply.error(errno(&what, &e)),
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(f) = self.shared.file(fh) else {
            return reply.error(Errno::EBADF);
        };
        let id = self.shared.next_read.fetch_add(1, Ordering::Relaxed);
        let caller = req.pid();
        let what = format!("read {}", f.name);
        if let Err(e) = f.check_connected(&what) {
            return reply.error(e);
        }
        let file = f.clone();
        let task = self.rt.spawn(async move {
            let r = tokio::select! {
                r = fill(&file.fid, offset, size) => Some(r),
                () = super::signals::pending(caller) => None,
            };
            lock(&file.reads).remove(&id);
            match r {
                Some(Ok(data)) => reply.data(&data),
                Some(Err(e)) => reply.error(errno(&what, &e)),
                None => {
                    tracing::debug!("mount: {what}: interrupted by a signal to process {caller}");
                    reply.error(Errno::EINTR);
                }
            }
        });
        lock(&f.reads).insert(id, task.abort_handle());
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(file) = self.shared.file(fh) else {
            return reply.error(Errno::EBADF);
        };
        let what = format!("write {}", file.name);
        if let Err(e) = file.check_connected(&what) {
            return reply.error(e);
        }
        let data = data.to_vec();
        self.rt.spawn(async move {
            match file.fid.write(offset, &data).await {
                Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
                Err(e) => reply.error(errno(&what, &e)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // A close of one descriptor among several: the open (the registration) lasts until
        // the release.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let Some(Open::File(file)) = lock(&self.shared.open).remove(&u64::from(fh)) else {
            return reply.ok();
        };
        // A read still waiting (its process was killed in an `event` read) is dropped, which
        // flushes it; the fid is clunked once the last task holding it is done.
        for (_, read) in lock(&file.reads).drain() {
            read.abort();
        }
        drop(file);
        reply.ok();
    }

    #[allow(clippy::too_many_arguments)]
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        // A shell asks whether a file is a terminal; none of these is.
        reply.error(Errno::ENOTTY);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // The registry decides at the open, as Inferno's does.
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if u64::from(ino) != 1 {
            return reply.error(Errno::ENOTDIR);
        }
        self.spawn(|sh| async move {
            let what = "list /";
            let root = match sh.root(what).await {
                Ok(root) => root,
                Err(e) => return reply.error(e),
            };
            let listed = async {
                let mut dir = root.try_clone().await?;
                dir.open(OREAD).await?;
                dir.read_dir().await
            };
            match listed.await {
                Ok(stats) => {
                    let mut entries = vec![
                        (1, FileType::Directory, ".".to_string()),
                        (1, FileType::Directory, "..".to_string()),
                    ];
                    let mut inodes = lock(&sh.inodes);
                    for st in stats {
                        let kind = if st.mode & DMDIR != 0 {
                            FileType::Directory
                        } else {
                            FileType::RegularFile
                        };
                        entries.push((inodes.ino(&st.name), kind, st.name));
                    }
                    drop(inodes);
                    let fh = sh.next_handle.fetch_add(1, Ordering::Relaxed);
                    lock(&sh.open).insert(fh, Open::Dir(Arc::new(OpenDir { entries })));
                    reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
                }
                Err(e) => reply.error(errno(what, &e)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let dir = match lock(&self.shared.open).get(&u64::from(fh)) {
            Some(Open::Dir(d)) => d.clone(),
            _ => return reply.error(Errno::EBADF),
        };
        for (i, (ino, kind, name)) in dir.entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.shared.open).remove(&u64::from(fh));
        reply.ok();
    }
}
