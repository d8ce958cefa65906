//! `registry watch`: Print services added, changed and removed.

use crate::CmdResult;

/// Print services added, changed and removed.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry watch`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
