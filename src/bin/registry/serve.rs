//! `registry serve`: Serve a registry(4) over 9P2000 (and the TCP shim).

use crate::CmdResult;

/// Serve a registry(4) over 9P2000 (and the TCP shim).
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry serve`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
