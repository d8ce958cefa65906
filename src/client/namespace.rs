//! A tiny per-process name space: where 9P registry connections are "mounted".
//!
//! A Rust process has no Inferno name space, so the client keeps one table per process that maps
//! a directory name to a 9P session. [`Registry::connect`](super::Registry::connect) mounts its
//! connection at `/mnt/registry` (replacing whatever was there, like Inferno's `MREPL`), and
//! [`Registry::new`](super::Registry::new) looks a directory up here first; a directory that is
//! not in the table is taken from the host file system (a registry the operating system has
//! mounted, e.g. with v9fs). The table holds the session alive until it is unmounted or replaced;
//! registries already made from it keep their own reference.
//!
//! Names are compared after removing trailing slashes; there is no union or path walking: a mount
//! at `/mnt/registry` does not make `/mnt` a directory.

use super::styx_backend::StyxSession;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

static MOUNTS: Mutex<Vec<(PathBuf, Arc<StyxSession>)>> = Mutex::new(Vec::new());

/// `dir` without trailing slashes (the root stays `/`).
fn clean(dir: &Path) -> PathBuf {
    dir.components().collect()
}

/// Mounts `session` at `dir`, replacing any earlier mount there.
pub(crate) fn mount(dir: &Path, session: Arc<StyxSession>) {
    let dir = clean(dir);
    let mut table = MOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    table.retain(|(d, _)| *d != dir);
    table.push((dir, session));
}

/// The session mounted at `dir`, if any.
pub(crate) fn lookup(dir: &Path) -> Option<Arc<StyxSession>> {
    let dir = clean(dir);
    let table = MOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    table
        .iter()
        .find(|(d, _)| *d == dir)
        .map(|(_, s)| Arc::clone(s))
}

/// Unmounts whatever is mounted at `dir`; returns whether something was.
pub fn unmount(dir: impl AsRef<Path>) -> bool {
    let dir = clean(dir.as_ref());
    let mut table = MOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    let before = table.len();
    table.retain(|(d, _)| *d != dir);
    table.len() != before
}

/// Whether a registry connection is mounted at `dir` in this process.
pub fn is_mounted(dir: impl AsRef<Path>) -> bool {
    lookup(dir.as_ref()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_trailing_slashes() {
        assert_eq!(
            clean(Path::new("/mnt/registry/")),
            Path::new("/mnt/registry")
        );
        assert_eq!(
            clean(Path::new("/mnt//registry")),
            Path::new("/mnt/registry")
        );
        assert_eq!(clean(Path::new("/")), Path::new("/"));
    }
}
