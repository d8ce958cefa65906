//! Inferno's public-key authentication ("infpk1"), its key files and the ssl(3) record layer,
//! as `spec/infpk1.md` describes them (section numbers below refer to it).
//!
//! * Key files: [`AuthInfo`], [`PublicKey`], [`SecretKey`], [`Certificate`], [`pkhash`],
//!   [`keys_for_signer`]; key generation in [`keygen`].
//! * The protocol: [`client`] and [`server`] run infpk1 and the algorithm message over any
//!   tokio stream and return an [`Authenticated`] stream (plain, or ssl records).
//! * [`attach`]: registries(2) `Service.attach`'s key choice and client run (§7.3).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), registries::auth::AuthError> {
//! use registries::auth::{AuthInfo, DEFAULT_SERVER_ALGS, client, server};
//! use tokio::io::AsyncWriteExt;
//!
//! // Client side, like Inferno's `mount -C sha1/rc4_256 -k alice tcp!host!styx /n/remote`.
//! let key = AuthInfo::read("alice.key".as_ref())?;
//! let tcp = tokio::net::TcpStream::connect("127.0.0.1:6666").await?;
//! let (mut conn, server_name) = client(tcp, "sha1/rc4_256", &key).await?;
//! conn.write_all(b"9P bytes go here").await?;
//!
//! // Server side, like Inferno's `listen` with its default algorithm list.
//! let key = AuthInfo::read("server.key".as_ref())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:6666").await?;
//! let (tcp, _) = listener.accept().await?;
//! let (conn, client_name) = server(tcp, DEFAULT_SERVER_ALGS, &key).await?;
//! # let _ = (server_name, conn, client_name);
//! # Ok(())
//! # }
//! ```

pub mod alg;
pub mod attach;
mod authinfo;
pub mod bigtext;
mod blind;
mod cert;
mod error;
mod expiry;
mod hash;
pub mod keygen;
mod keys;
mod keyset;
pub mod msgio;
mod prime;
mod protocol;
mod random;
pub mod ssl;

pub use alg::{Authenticated, DEFAULT_SERVER_ALGS, client, server};
pub use authinfo::AuthInfo;
pub use cert::{Certificate, Signature, sign, verify};
pub use error::AuthError;
pub use hash::HashAlg;
pub use keys::{PkAlg, PublicKey, SecretKey, SkAlg};
pub use keyset::{KeyEntry, default_keydir, keys_for_signer, pkhash};
pub use protocol::{Outcome, authenticate};
