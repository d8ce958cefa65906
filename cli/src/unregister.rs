//! `registry unregister`: Remove a service.

use crate::CmdResult;
use crate::opts::RegistryOpt;
use registries::client::Error;
use registries::wire::Diagnostic;
use std::process::ExitCode;

/// Remove a service.
///
/// Only the service's owner (the user name that registered it) may remove it; the registry's
/// diagnostic is printed otherwise (e.g. `permission denied`).
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry unregister 'tcp!myhost!7001'
  registry unregister -m 'tcp!reghost!6675' 'tcp!myhost!7001'

Exit status: 0 removed, 1 refused or failed, 2 usage, 3 no answer within --timeout.")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// The service's name.
    name: String,
}

/// Runs `registry unregister`.
pub async fn run(args: Args) -> CmdResult {
    let reg = args.reg.open().await?;
    match args
        .reg
        .limit("unregister", reg.unregister(&args.name))
        .await
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => match e.downcast_ref::<Error>() {
            Some(Error::Registry(d)) if is_missing(d) => {
                Err(format!("no service named {}", args.name).into())
            }
            _ => Err(e),
        },
    }
}

/// Whether the registry said there is no such file.
fn is_missing(d: &Diagnostic) -> bool {
    match d {
        Diagnostic::NotFound => true,
        Diagnostic::Other(text) => text.starts_with("file does not exist"),
        _ => false,
    }
}
