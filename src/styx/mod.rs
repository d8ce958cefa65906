//! 9P2000 (Inferno's Styx): a byte-exact codec, a multiplexed client with real fids, and a
//! server framework.
//!
//! The codec ([`msg`], [`codec`]) and the client's connection logic ([`client_core`]) are
//! pure: no sockets, no clocks. The [`Client`] and `server` (feature `server`) are thin tokio
//! adapters around them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), registries::styx::Error> {
//! use registries::styx::{Client, OREAD};
//! let stream = tokio::net::TcpStream::connect("127.0.0.1:6701").await?;
//! let client = Client::connect(stream).await?;
//! let root = client.attach("me", "").await?;
//! let mut f = root.walk(&["index"]).await?;
//! f.open(OREAD).await?;
//! let text = f.read_all().await?;
//! # let _ = text; Ok(()) }
//! ```

mod client;
pub mod client_core;
pub mod codec;
mod error;
mod fid;
pub mod msg;
#[cfg(feature = "server")]
pub mod server;

pub use client::{Client, DEFAULT_MSIZE};
pub use client_core::ClientCore;
pub use codec::{DecodeError, EncodeError};
pub use error::{Error, Result};
pub use fid::Fid;
pub use msg::{
    Body, DMAPPEND, DMAUTH, DMDIR, DMEXCL, IOHDRSZ, LARGE_MSIZE, MAXWELEM, Msg, NOFID, NOTAG,
    OEXEC, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE, QTAPPEND, QTAUTH, QTDIR, QTEXCL, QTFILE, Qid,
    Stat, VERSION,
};

#[cfg(test)]
mod codec_tests;
