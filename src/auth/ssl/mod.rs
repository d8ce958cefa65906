//! Inferno's ssl(3) record layer (devssl, spec/infpk1.md §6): MAC-first records with optional
//! RC4/DES/IDEA encryption, presented as an ordinary tokio byte stream ([`SslStream`]).

mod cipher;
mod config;
pub mod record;
mod stream;

pub use cipher::CipherKind;
pub use config::SslConfig;
pub use record::{Opener, Sealer};
pub use stream::SslStream;
