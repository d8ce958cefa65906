//! The registry's files: their qids, permissions and directory entries (spec/registry.md §2), and
//! Inferno's permission check (`openok` of styxservers).

use super::catalog::{Catalog, REGISTRY_USER};
use super::index::EntryId;
use crate::styx::{DMDIR, OEXEC, OTRUNC, QTDIR, QTFILE, Qid, Stat};

/// Qid path bits below the service number (Inferno's `Shift`).
pub const SHIFT: u32 = 4;
/// The low bits of a service file's qid path.
pub const QSVC: u64 = 5;

/// One file of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// The root directory, qid path 0.
    Root,
    /// `new`, qid path 1.
    New,
    /// `index`, qid path 2.
    Index,
    /// `event`, qid path 3.
    Event,
    /// `find`, qid path 4.
    Find,
    /// A service file, qid path `id << 4 | 5`.
    Svc(EntryId),
    /// The root of the change feed's tree (attach name `feed`), qid path 6.
    FeedRoot,
    /// The feed's `watch` file, qid path 7.
    FeedWatch,
}

impl Node {
    /// The node's qid path.
    pub fn path(self) -> u64 {
        match self {
            Node::Root => 0,
            Node::New => 1,
            Node::Index => 2,
            Node::Event => 3,
            Node::Find => 4,
            Node::Svc(id) => (id << SHIFT) | QSVC,
            Node::FeedRoot => 6,
            Node::FeedWatch => 7,
        }
    }

    /// Whether it is a directory: the two roots.
    pub fn is_dir(self) -> bool {
        matches!(self, Node::Root | Node::FeedRoot)
    }

    /// The qid type: only the roots are directories.
    pub fn qtype(self) -> u8 {
        if self.is_dir() { QTDIR } else { QTFILE }
    }

    /// The qid as Open replies give it: version 0 for every file (Inferno's `open`).
    pub fn open_qid(self) -> Qid {
        Qid {
            ty: self.qtype(),
            version: 0,
            path: self.path(),
        }
    }

    /// The directory entry (Inferno's `dirgen`), or `None` when the service is gone.
    pub fn stat(self, st: &Catalog) -> Option<Stat> {
        let start = st.start_time();
        let mut d = Stat {
            qid: Qid {
                ty: self.qtype(),
                version: 0,
                path: self.path(),
            },
            atime: start,
            mtime: start,
            uid: REGISTRY_USER.to_string(),
            gid: REGISTRY_USER.to_string(),
            ..Stat::default()
        };
        let (name, mode) = match self {
            Node::Root => {
                d.qid.version = st.rootvers();
                (".", DMDIR | 0o777)
            }
            Node::New => ("new", 0o666),
            Node::Index => ("index", 0o444),
            Node::Event => ("event", 0o444),
            Node::Find => ("find", 0o666),
            Node::FeedRoot => (".", DMDIR | 0o555),
            Node::FeedWatch => ("watch", 0o666),
            Node::Svc(id) => {
                let svc = st.entry(id)?;
                d.uid = svc.owner.to_string();
                d.gid = svc.owner.to_string();
                d.atime = svc.atime;
                d.mtime = svc.mtime;
                d.qid.version = svc.vers;
                (svc.name().map_or("", |n| &**n), 0o644)
            }
        };
        d.name = name.to_string();
        d.mode = mode;
        Some(d)
    }

    /// A directory's entries: for the root, Inferno's order (`new index find event`, then the
    /// named services); for the feed's root, `watch`.
    pub fn dir_entries(self, st: &Catalog) -> Box<dyn Iterator<Item = Node> + '_> {
        match self {
            Node::FeedRoot => Box::new(std::iter::once(Node::FeedWatch)),
            _ => Box::new(
                [Node::New, Node::Index, Node::Find, Node::Event]
                    .into_iter()
                    .chain(st.named().map(|s| Node::Svc(s.id))),
            ),
        }
    }
}

/// Inferno's `openok`: whether `uname` may open a file of `perm`, `uid`, `gid` with `omode`.
pub fn openok(uname: &str, omode: u8, perm: u32, uid: &str, gid: &str) -> bool {
    const ACCESS: [u32; 4] = [0o400, 0o200, 0o600, 0o100];
    let mut t = ACCESS[usize::from(omode & 3)];
    if omode & OTRUNC != 0 {
        if perm & DMDIR != 0 {
            return false;
        }
        t |= 0o200;
    }
    if uname == uid && (t & perm) == t {
        return true;
    }
    if uname == gid && (t & (perm << 3)) == t {
        return true;
    }
    (t & (perm << 6)) == t
}

/// Whether `omode`, without OTRUNC and ORCLOSE, is one Inferno accepts (OREAD, OWRITE, ORDWR).
pub fn mode_ok(omode: u8) -> bool {
    omode & 3 != OEXEC
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::styx::{ORDWR, OREAD, OWRITE};

    #[test]
    fn paths() {
        assert_eq!(Node::Svc(0).path(), 5);
        assert_eq!(Node::Svc(1).path(), 0x15);
        assert_eq!(Node::Find.path(), 4);
    }

    #[test]
    fn permissions() {
        assert!(openok("bob", OREAD, 0o644, "alice", "alice"));
        assert!(!openok("bob", OWRITE, 0o644, "alice", "alice"));
        assert!(openok("alice", ORDWR, 0o644, "alice", "alice"));
        assert!(!openok("registry", OWRITE, 0o444, "registry", "registry"));
        assert!(!openok("x", OREAD | OTRUNC, 0o444, "registry", "registry"));
        assert!(openok("x", OEXEC, DMDIR | 0o777, "registry", "registry"));
    }
}
