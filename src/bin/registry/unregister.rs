//! `registry unregister`: Remove a service.

use crate::CmdResult;

/// Remove a service.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry unregister`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
