//! `registry register`: Register a service until interrupted.

use crate::CmdResult;

/// Register a service until interrupted.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry register`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
