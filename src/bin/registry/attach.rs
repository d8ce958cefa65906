//! `registry attach`: Find a service and attach to it, joining it to stdin and stdout.

use crate::CmdResult;

/// Find a service and attach to it, joining it to stdin and stdout.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry attach`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
