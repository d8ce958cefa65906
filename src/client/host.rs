//! The host-directory backend: a registry the operating system has mounted (e.g. Linux v9fs, or
//! Inferno's `export` mounted with 9pfuse), used through ordinary file operations.
//!
//! Each operation runs as blocking file I/O on tokio's blocking pool, so that one `write` call is
//! one write on the file, as the registry's semantics need (a find filter, a registration line).

use super::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A registry in a host directory, with its `index` opened once, as Limbo's `Registry.new` does.
pub struct HostDir {
    dir: PathBuf,
    index: Arc<Mutex<File>>,
}

/// Maps a host file error to the client error: the host's text is the registry's diagnostic.
fn host_err(e: std::io::Error) -> Error {
    Error::from_remote(&e.to_string())
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(host_err),
        Err(e) => Err(Error::Io(std::io::Error::other(e))),
    }
}

/// One write of all of `data`, as the registry needs (a short write is an error).
fn write_once(mut f: &File, data: &[u8]) -> std::io::Result<()> {
    let n = f.write(data)?;
    if n != data.len() {
        return Err(std::io::Error::other(format!(
            "short write: {n} of {}",
            data.len()
        )));
    }
    Ok(())
}

/// Reads `f` from offset 0 to end of file, 64 KB at a time: a registry's files say they are
/// empty (length 0, as in Inferno), so `read_to_end` would start from small reads, each a round
/// trip to the registry on a mount that does not cache.
fn read_from_start(f: &mut File) -> std::io::Result<String> {
    const CHUNK: usize = 64 * 1024;
    f.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::new();
    loop {
        let len = buf.len();
        buf.resize(len + CHUNK, 0);
        let n = f.read(&mut buf[len..])?;
        buf.truncate(len + n);
        if n == 0 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

impl HostDir {
    /// Opens `dir/index`; fails as Limbo's `Registry.new` does when it cannot.
    pub async fn open(dir: &Path) -> Result<HostDir> {
        let path = dir.join("index");
        match tokio::task::spawn_blocking(move || File::open(path)).await {
            Ok(Ok(f)) => Ok(HostDir {
                dir: dir.to_path_buf(),
                index: Arc::new(Mutex::new(f)),
            }),
            Ok(Err(e)) => Err(Error::NoRegistry {
                dir: dir.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) => Err(Error::Io(std::io::Error::other(e))),
        }
    }

    /// Re-reads the `index` opened at start from offset 0.
    pub async fn index(&self) -> Result<String> {
        let index = Arc::clone(&self.index);
        blocking(move || {
            let mut f = index
                .lock()
                .map_err(|_| std::io::Error::other("index lock poisoned"))?;
            read_from_start(&mut f)
        })
        .await
    }

    /// Opens `find` read-write, writes the query, seeks to 0 and reads to the end.
    pub async fn find(&self, query: String) -> Result<String> {
        let path = self.dir.join("find");
        blocking(move || {
            let mut f = OpenOptions::new().read(true).write(true).open(path)?;
            write_once(&f, query.as_bytes())?;
            read_from_start(&mut f)
        })
        .await
    }

    /// Opens `new` for writing and writes the registration line; the open file is the
    /// registration.
    pub async fn register(&self, line: String) -> Result<HostFile> {
        let path = self.dir.join("new");
        let f = blocking(move || {
            let f = OpenOptions::new().write(true).open(path)?;
            write_once(&f, line.as_bytes())?;
            Ok(f)
        })
        .await?;
        Ok(HostFile(Arc::new(f)))
    }

    /// Removes `dir/name`.
    pub async fn unregister(&self, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        blocking(move || std::fs::remove_file(path)).await
    }

    /// Opens `event` for reading.
    pub async fn events(&self) -> Result<HostFile> {
        let path = self.dir.join("event");
        let f = match tokio::task::spawn_blocking(move || File::open(path)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return Err(Error::NoEvents(e.to_string())),
            Err(e) => return Err(Error::Io(std::io::Error::other(e))),
        };
        Ok(HostFile(Arc::new(f)))
    }
}

/// An open host file: a registration (`new`) or an `event` reader. Closing it is dropping it.
pub struct HostFile(Arc<File>);

impl HostFile {
    /// One write of `data` at the file's current offset.
    pub async fn write(&self, data: String) -> Result<()> {
        let f = Arc::clone(&self.0);
        blocking(move || write_once(&f, data.as_bytes())).await
    }

    /// One read of up to `count` bytes (blocks, for `event`, until the registry changes).
    pub async fn read(&self, count: usize) -> Result<Vec<u8>> {
        let f = Arc::clone(&self.0);
        blocking(move || {
            let mut buf = vec![0; count];
            let n = (&*f).read(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
        .await
    }
}
