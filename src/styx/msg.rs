//! 9P2000 message types and constants (Plan 9 intro(5), Inferno styx(5)).
//!
//! The codec itself lives in [`super::codec`]; this file only says what a message is.

use bytes::Bytes;

/// The tag of Tversion/Rversion, which stands outside the tag space.
pub const NOTAG: u16 = 0xFFFF;
/// "No fid": the afid of an attach without authentication.
pub const NOFID: u32 = 0xFFFF_FFFF;
/// Most names in one Twalk.
pub const MAXWELEM: usize = 16;
/// Header bytes of Rread/Twrite beyond the data: the data of one message is at most msize − IOHDRSZ.
pub const IOHDRSZ: u32 = 24;

/// 64 KiB of data a message: the msize our registry client asks for and our server grants by
/// default. Inferno's servers answer it with their own 8216, and Inferno's clients, offering 8216,
/// get 8216 from ours.
pub const LARGE_MSIZE: u32 = 65_536 + IOHDRSZ;
/// The version string we speak.
pub const VERSION: &str = "9P2000";

/// Qid type bit: a directory.
pub const QTDIR: u8 = 0x80;
/// Qid type bit: an append-only file.
pub const QTAPPEND: u8 = 0x40;
/// Qid type bit: an exclusive-use file.
pub const QTEXCL: u8 = 0x20;
/// Qid type bit: an authentication file.
pub const QTAUTH: u8 = 0x08;
/// Qid type: a plain file.
pub const QTFILE: u8 = 0x00;

/// Mode bit of a directory in [`Stat::mode`] and create's perm.
pub const DMDIR: u32 = 0x8000_0000;
/// Mode bit of an append-only file.
pub const DMAPPEND: u32 = 0x4000_0000;
/// Mode bit of an exclusive-use file.
pub const DMEXCL: u32 = 0x2000_0000;
/// Mode bit of an authentication file.
pub const DMAUTH: u32 = 0x0800_0000;

/// Open for reading.
pub const OREAD: u8 = 0;
/// Open for writing.
pub const OWRITE: u8 = 1;
/// Open for reading and writing.
pub const ORDWR: u8 = 2;
/// Open for execution (read access, for a directory: search).
pub const OEXEC: u8 = 3;
/// Truncate the file on open.
pub const OTRUNC: u8 = 0x10;
/// Remove the file when the fid is clunked.
pub const ORCLOSE: u8 = 0x40;

/// A server's unique identification of a file: type bits, version and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Qid {
    /// Type bits (QTDIR, QTAPPEND, ...).
    pub ty: u8,
    /// Version, bumped by servers on change (often 0).
    pub version: u32,
    /// The unique path of the file on its server.
    pub path: u64,
}

impl Qid {
    /// Whether this qid names a directory.
    pub fn is_dir(&self) -> bool {
        self.ty & QTDIR != 0
    }
}

/// A 9P2000 directory entry (stat(5)), without the 9P2000.u extensions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    /// Server type (kernel device type; 0 for user servers).
    pub ty: u16,
    /// Server subtype.
    pub dev: u32,
    /// The file's qid.
    pub qid: Qid,
    /// Permissions and mode bits (DMDIR, ...).
    pub mode: u32,
    /// Last access time, seconds since the epoch.
    pub atime: u32,
    /// Last modification time, seconds since the epoch.
    pub mtime: u32,
    /// Length in bytes (0 for directories).
    pub length: u64,
    /// Last element of the file's name.
    pub name: String,
    /// Owner.
    pub uid: String,
    /// Group.
    pub gid: String,
    /// Last modifier.
    pub muid: String,
}

impl Stat {
    /// A stat whose every field means "don't change" in a Twstat (stat(5)).
    pub fn dont_touch() -> Stat {
        Stat {
            ty: u16::MAX,
            dev: u32::MAX,
            qid: Qid {
                ty: u8::MAX,
                version: u32::MAX,
                path: u64::MAX,
            },
            mode: u32::MAX,
            atime: u32::MAX,
            mtime: u32::MAX,
            length: u64::MAX,
            name: String::new(),
            uid: String::new(),
            gid: String::new(),
            muid: String::new(),
        }
    }
}

/// One 9P2000 message: its tag and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The tag pairing a reply with its request ([`NOTAG`] for version).
    pub tag: u16,
    /// What the message says.
    pub body: Body,
}

/// The body of every 9P2000 message, T (requests) and R (replies). Terror does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Negotiate message size and protocol version.
    Tversion {
        /// Largest message the client will send or accept.
        msize: u32,
        /// Protocol version, "9P2000".
        version: String,
    },
    /// The server's answer to Tversion.
    Rversion {
        /// Negotiated message size.
        msize: u32,
        /// Agreed version, or "unknown".
        version: String,
    },
    /// Start an authentication conversation on `afid`.
    Tauth {
        /// New fid for the authentication file.
        afid: u32,
        /// User name.
        uname: String,
        /// File tree to attach.
        aname: String,
    },
    /// The qid of the authentication file.
    Rauth {
        /// Qid of the auth file.
        aqid: Qid,
    },
    /// Attach `fid` to the root of file tree `aname` as user `uname`.
    Tattach {
        /// New fid for the root.
        fid: u32,
        /// Authentication fid, or NOFID.
        afid: u32,
        /// User name.
        uname: String,
        /// File tree to attach.
        aname: String,
    },
    /// The root's qid.
    Rattach {
        /// Qid of the root.
        qid: Qid,
    },
    /// A failed request; the text is the diagnostic.
    Rerror {
        /// The error text.
        ename: String,
    },
    /// Abort the request tagged `oldtag`.
    Tflush {
        /// Tag of the request to abort.
        oldtag: u16,
    },
    /// `oldtag` is free again.
    Rflush,
    /// Walk from `fid` through `wnames` and set `newfid` there.
    Twalk {
        /// Starting fid.
        fid: u32,
        /// Fid to set (may equal `fid`).
        newfid: u32,
        /// Path elements, at most [`MAXWELEM`].
        wnames: Vec<String>,
    },
    /// Qids of the elements walked (fewer than asked: the walk stopped).
    Rwalk {
        /// One qid per element walked.
        wqids: Vec<Qid>,
    },
    /// Open `fid`.
    Topen {
        /// The fid.
        fid: u32,
        /// OREAD.. with OTRUNC/ORCLOSE.
        mode: u8,
    },
    /// Open succeeded.
    Ropen {
        /// Qid of the opened file.
        qid: Qid,
        /// Largest read/write that is atomic, 0 for "msize − IOHDRSZ".
        iounit: u32,
    },
    /// Create `name` in the directory `fid` and open it; the fid then names the new file.
    Tcreate {
        /// Directory fid.
        fid: u32,
        /// New file's name.
        name: String,
        /// Permissions (DMDIR for a directory).
        perm: u32,
        /// Open mode.
        mode: u8,
    },
    /// Create succeeded.
    Rcreate {
        /// Qid of the new file.
        qid: Qid,
        /// As in Ropen.
        iounit: u32,
    },
    /// Read `count` bytes at `offset`.
    Tread {
        /// Open fid.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// Most bytes wanted.
        count: u32,
    },
    /// Data read (empty: end of file).
    Rread {
        /// The bytes.
        data: Bytes,
    },
    /// Write `data` at `offset`.
    Twrite {
        /// Open fid.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// Bytes written.
    Rwrite {
        /// How many.
        count: u32,
    },
    /// Forget `fid`.
    Tclunk {
        /// The fid.
        fid: u32,
    },
    /// Fid forgotten.
    Rclunk,
    /// Remove the file of `fid` and clunk the fid.
    Tremove {
        /// The fid.
        fid: u32,
    },
    /// File removed.
    Rremove,
    /// Ask for the directory entry of `fid`.
    Tstat {
        /// The fid.
        fid: u32,
    },
    /// The directory entry.
    Rstat {
        /// The entry.
        stat: Stat,
    },
    /// Change the directory entry of `fid`.
    Twstat {
        /// The fid.
        fid: u32,
        /// New values ("don't touch" fields left as in [`Stat::dont_touch`]).
        stat: Stat,
    },
    /// Entry changed.
    Rwstat,
}

impl Body {
    /// The 9P type byte of this message.
    pub fn type_id(&self) -> u8 {
        match self {
            Body::Tversion { .. } => 100,
            Body::Rversion { .. } => 101,
            Body::Tauth { .. } => 102,
            Body::Rauth { .. } => 103,
            Body::Tattach { .. } => 104,
            Body::Rattach { .. } => 105,
            Body::Rerror { .. } => 107,
            Body::Tflush { .. } => 108,
            Body::Rflush => 109,
            Body::Twalk { .. } => 110,
            Body::Rwalk { .. } => 111,
            Body::Topen { .. } => 112,
            Body::Ropen { .. } => 113,
            Body::Tcreate { .. } => 114,
            Body::Rcreate { .. } => 115,
            Body::Tread { .. } => 116,
            Body::Rread { .. } => 117,
            Body::Twrite { .. } => 118,
            Body::Rwrite { .. } => 119,
            Body::Tclunk { .. } => 120,
            Body::Rclunk => 121,
            Body::Tremove { .. } => 122,
            Body::Rremove => 123,
            Body::Tstat { .. } => 124,
            Body::Rstat { .. } => 125,
            Body::Twstat { .. } => 126,
            Body::Rwstat => 127,
        }
    }

    /// The Plan 9 name of this message's type ("Tversion", ...), for logs and errors.
    pub fn name(&self) -> &'static str {
        type_name(self.type_id()).unwrap_or("?")
    }
}

/// The Plan 9 name of a 9P type byte, if it is one.
pub fn type_name(ty: u8) -> Option<&'static str> {
    const NAMES: [&str; 28] = [
        "Tversion", "Rversion", "Tauth", "Rauth", "Tattach", "Rattach", "Terror", "Rerror",
        "Tflush", "Rflush", "Twalk", "Rwalk", "Topen", "Ropen", "Tcreate", "Rcreate", "Tread",
        "Rread", "Twrite", "Rwrite", "Tclunk", "Rclunk", "Tremove", "Rremove", "Tstat", "Rstat",
        "Twstat", "Rwstat",
    ];
    NAMES.get(usize::from(ty).checked_sub(100)?).copied()
}
