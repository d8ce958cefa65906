//! `registry query`: Find services, like Inferno's ndb/regquery.

use crate::CmdResult;

/// Find services, like Inferno's ndb/regquery.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry query`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
