//! `registry`: serve, query, watch and use Inferno service registries.

mod attach;
mod demo;
mod key;
mod query;
mod register;
mod serve;
mod shim;
mod unregister;
mod watch;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Inferno's service registry: a registry(4) server, its TCP shim, and clients.
#[derive(Parser)]
#[command(name = "registry", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(serve::Args),
    Shim(shim::Args),
    Query(query::Args),
    Register(register::Args),
    Unregister(unregister::Args),
    Watch(watch::Args),
    Key(key::Args),
    Attach(attach::Args),
    Bench(registry_bench::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REGISTRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("registry: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Shim(a) => shim::run(a).await,
            Command::Query(a) => query::run(a).await,
            Command::Register(a) => register::run(a).await,
            Command::Unregister(a) => unregister::run(a).await,
            Command::Watch(a) => watch::run(a).await,
            Command::Key(a) => key::run(a).await,
            Command::Attach(a) => attach::run(a).await,
            Command::Bench(a) => registry_bench::run(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("registry: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a subcommand returns: an exit code, or a diagnostic that `main` prints.
pub type CmdResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;
