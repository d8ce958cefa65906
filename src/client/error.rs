//! The one error type of the client layer.

use crate::wire::Diagnostic;

/// Why a registries(2) operation failed.
///
/// Where Inferno's registries(2) has a diagnostic, the text is the same. Where the registry itself
/// refused (an `Rerror` or a failed host file operation), [`Error::Registry`] carries its
/// diagnostic as the typed [`Diagnostic`] the server uses, so a caller matches
/// `Error::Registry(Diagnostic::Duplicate)` rather than text; `Display` is the registry's text
/// verbatim, e.g. `duplicate service name` or `permission denied`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry refused: its diagnostic, typed; `Display` gives its text unchanged.
    #[error("{0}")]
    Registry(Diagnostic),
    /// The registry (or shim) answered something registries(2) cannot use: a reply over a
    /// limit, text that is not UTF-8, a short write.
    #[error("{0}")]
    Protocol(String),
    /// The registry is not where the caller said: Limbo's `Registry.new` returns nil then.
    #[error("cannot open {dir}/index: {reason}")]
    NoRegistry {
        /// The directory that was given.
        dir: String,
        /// Why `index` could not be opened.
        reason: String,
    },
    /// The service's address could not be dialled (Limbo: `cannot dial: %r`): a dial string
    /// that cannot be used, or a connection that could not be made (with the operating system's
    /// [`std::io::ErrorKind`]: refused, unknown host, timed out...).
    #[error("cannot dial: {0}")]
    Dial(#[source] crate::net::DialError),
    /// The service's `auth` attribute names a method registries(2) does not know
    /// (Limbo: `unknown authentication type %q`; the value is stored already quoted).
    #[error("unknown authentication type {0}")]
    UnknownAuth(String),
    /// Authentication could not be done: the auth layer's diagnostic, verbatim (e.g.
    /// `no matching keys found`, `cannot authenticate: pk doesn't match certificate`).
    #[error("{0}")]
    Auth(String),
    /// The 9P session could not be set up on the connection (Limbo: `mount failed: %r`).
    #[error("mount failed: {0}")]
    Mount(String),
    /// The registry has no usable `event` file: older Inferno registries answer
    /// `not implemented yet`. The registry's own text follows.
    #[error("registry does not support events: {0}")]
    NoEvents(String),
    /// The registry has no change feed (a real Inferno registry, a host directory, the shim).
    #[error("registry has no change feed: {0}")]
    NoFeed(String),
    /// The revision asked for is no longer kept, or the reader fell too far behind: resume
    /// from a snapshot (spec/feed.md).
    #[error("compacted: oldest revision kept is {oldest}")]
    Compacted {
        /// The oldest revision the registry still keeps.
        oldest: u64,
    },
    /// The `event` file gave something other than a `%8.8d` change count.
    #[error("bad event report: {0:?}")]
    BadEvent(String),
    /// This kind of registry connection cannot do the operation (e.g. mounting a connection that
    /// is not 9P).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The connection to the registry failed or was lost.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer within the time set with [`Registry::with_timeout`](super::Registry::with_timeout)
    /// or given to [`Registry::open_with_timeout`](super::Registry::open_with_timeout): the
    /// operation may or may not have happened.
    #[error("{what}: no answer within {after:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long.
        after: std::time::Duration,
    },
    /// No service matching a [`Dialer`](super::Dialer)'s query answered: each tried and why.
    #[error("{0}")]
    NoneAnswered(super::NoneAnswered),
    /// An error of another part of this crate, for a program that returns this type from code
    /// that also serves (e.g. `?` on the server's builder).
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Results of the client layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The same error again, for each of several callers that one failure reaches (an I/O
    /// error keeps its kind and text).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Registry(d) => Error::Registry(d.clone()),
            Error::Protocol(s) => Error::Protocol(s.clone()),
            Error::NoRegistry { dir, reason } => Error::NoRegistry {
                dir: dir.clone(),
                reason: reason.clone(),
            },
            Error::Dial(e) => Error::Dial(e.clone()),
            Error::UnknownAuth(s) => Error::UnknownAuth(s.clone()),
            Error::Auth(s) => Error::Auth(s.clone()),
            Error::Mount(s) => Error::Mount(s.clone()),
            Error::NoEvents(s) => Error::NoEvents(s.clone()),
            Error::NoFeed(s) => Error::NoFeed(s.clone()),
            Error::Compacted { oldest } => Error::Compacted { oldest: *oldest },
            Error::BadEvent(s) => Error::BadEvent(s.clone()),
            Error::Unsupported(s) => Error::Unsupported(s),
            Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
            Error::Timeout { what, after } => Error::Timeout {
                what,
                after: *after,
            },
            Error::Other(e) => Error::Other(e.to_string().into()),
            Error::NoneAnswered(n) => Error::NoneAnswered(super::NoneAnswered {
                query: n.query.clone(),
                tried: n
                    .tried
                    .iter()
                    .map(|(a, e)| (a.clone(), e.duplicate()))
                    .collect(),
            }),
        }
    }

    /// The operating system's kind of failure behind this error, where there is one: a
    /// connection refused, an unknown host, a reset, a timeout.
    ///
    /// ```
    /// use registries::client::Error;
    /// use std::io::ErrorKind;
    /// # async fn demo() {
    /// match registries::Registry::open("tcp!127.0.0.1!1").await {
    ///     Err(e) if e.io_kind() == Some(ErrorKind::ConnectionRefused) => println!("nobody there"),
    ///     Err(e) => println!("{e}"),
    ///     Ok(_) => println!("connected"),
    /// }
    /// # }
    /// ```
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Dial(crate::net::DialError::Connect { kind, .. }) => Some(*kind),
            Error::Io(e) => Some(e.kind()),
            Error::Timeout { .. } => Some(std::io::ErrorKind::TimedOut),
            _ => None,
        }
    }

    /// The error for a registry's diagnostic text, typed when it is one of Inferno's.
    pub(crate) fn from_remote(text: &str) -> Error {
        match crate::wire::parse_compacted(text) {
            Some(oldest) => Error::Compacted { oldest },
            None => Error::Registry(Diagnostic::from_text(text)),
        }
    }
}
