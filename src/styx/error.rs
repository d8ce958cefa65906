//! The client's one error type.

use super::codec::{DecodeError, EncodeError};

/// Why a 9P request from our client failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The server answered Rerror; the text is the server's, verbatim
    /// (e.g. "duplicate service name").
    #[error("{0}")]
    Remote(String),
    /// The connection is gone (EOF, reset, protocol error); every pending request fails so.
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// The server does not speak 9P2000.
    #[error("server speaks {0:?}, not 9P2000")]
    Version(String),
    /// A walk stopped short: the named element does not exist (Plan 9's wording).
    #[error("file does not exist: '{0}'")]
    NotFound(String),
    /// The server answered with a message of the wrong type.
    #[error("unexpected reply {0}")]
    Unexpected(&'static str),
    /// A message the server sent could not be decoded.
    #[error("bad message from server: {0}")]
    Decode(#[from] DecodeError),
    /// A request could not be encoded (a name over 65535 bytes, ...) or exceeds msize.
    #[error("cannot send request: {0}")]
    Encode(#[from] EncodeError),
    /// A request larger than the negotiated msize.
    #[error("request of {0} bytes exceeds msize")]
    TooBig(usize),
    /// All 65535 tags are outstanding.
    #[error("too many requests in flight")]
    NoTags,
    /// An I/O error while setting up the connection.
    #[error("i/o error: {0}")]
    Io(String),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
