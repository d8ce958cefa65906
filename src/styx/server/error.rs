//! The error a file system hands back: its text becomes the Rerror verbatim.

use std::borrow::Cow;

/// An error of a [`super::FileSystem`] hook; the client sees exactly [`FsError::text`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FsError(pub Cow<'static, str>);

impl FsError {
    /// The diagnostic text.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for FsError {
    fn from(s: &'static str) -> Self {
        FsError(Cow::Borrowed(s))
    }
}

impl From<String> for FsError {
    fn from(s: String) -> Self {
        FsError(Cow::Owned(s))
    }
}

/// Inferno's usual diagnostics (module/styxservers.m), kept verbatim.
pub mod errors {
    /// A newfid or attach fid that is already in use.
    pub const EINUSE: &str = "fid already in use";
    /// An unknown fid.
    pub const EBADFID: &str = "bad fid";
    /// Walk, open or create of an open fid.
    pub const EOPEN: &str = "fid already opened";
    /// No such file.
    pub const ENOTFOUND: &str = "file does not exist";
    /// Walk or create in a non-directory.
    pub const ENOTDIR: &str = "not a directory";
    /// Not allowed.
    pub const EPERM: &str = "permission denied";
    /// A bad argument.
    pub const EBADARG: &str = "bad argument";
    /// Create of an existing name.
    pub const EEXISTS: &str = "file already exists";
    /// An open mode that is not one.
    pub const EMODE: &str = "open/create -- unknown mode";
    /// A bad offset.
    pub const EOFFSET: &str = "read/write -- bad offset";
    /// A count over msize.
    pub const ECOUNT: &str = "read/write -- count negative or exceeds msgsize";
    /// Read or write of an unopened fid.
    pub const ENOTOPEN: &str = "read/write -- on non open fid";
    /// Read or write against the open mode.
    pub const EACCESS: &str = "read/write -- not open in suitable mode";
    /// A name with a bad character.
    pub const ENAME: &str = "bad character in file name";
    /// Create of "." or "..".
    pub const EDOT: &str = ". and .. are illegal names";
    /// Tauth on a server that needs none.
    pub const ENOAUTH: &str = "authentication not required";
    /// A request before Tversion.
    pub const ENOVERSION: &str = "Tversion not seen";
    /// A tag that is already outstanding (Plan 9 lib9p wording).
    pub const EDUPTAG: &str = "duplicate tag";
    /// Too many fids on one connection.
    pub const ETOOMANYFIDS: &str = "too many fids";
    /// A request beyond `max_outstanding` running and as many waiting on one connection.
    pub const ETOOMANYREQUESTS: &str = "too many outstanding requests";
    /// msize below 256.
    pub const EMSIZE: &str = "message size too small";
}
