//! `registry bench`: Benchmark a registry beside etcd.

use crate::CmdResult;

/// Benchmark a registry beside etcd.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `registry bench`.
pub async fn run(_args: Args) -> CmdResult {
    Err("not implemented yet".into())
}
