//! `registry shim`: Serve the TCP shim (6701/6702/6703) in front of a remote registry.

use crate::CmdResult;

/// Serve the TCP shim (6701/6702/6703) in front of a remote registry.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry shim`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
