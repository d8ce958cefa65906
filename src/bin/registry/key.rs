//! `registry key`: Make and show Inferno key files.

use crate::CmdResult;

/// Make and show Inferno key files.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry key`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
