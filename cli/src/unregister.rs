//! `registry unregister`: Remove a service.

use crate::CmdResult;
use crate::query::RegistryOpt;
use std::process::ExitCode;

/// Remove a service.
///
/// Only the service's owner (the user name that registered it) may remove it; the registry's
/// diagnostic is printed otherwise (e.g. `permission denied`).
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry unregister tcp!myhost!7001
  registry unregister -m tcp!reghost!6675 tcp!myhost!7001")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// The service's name.
    name: String,
}

/// Runs `registry unregister`.
pub async fn run(args: Args) -> CmdResult {
    let reg = args.reg.open().await?;
    reg.unregister(&args.name).await?;
    Ok(ExitCode::SUCCESS)
}
