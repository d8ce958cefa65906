//! `registry`: serve, query, watch and use Inferno service registries.

mod attach;
mod demo;
mod json;
mod key;
mod man;
mod mount;
mod opts;
mod pipe;
mod query;
mod register;
mod serve;
mod shim;
mod unregister;
mod watch;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Inferno's service registry: a registry(4) server, its TCP shim, and clients.
#[derive(Parser)]
#[command(name = "registry", version, about, long_about = None, after_help = "\
Exit status: 0 success, 1 failure, 2 usage error, 3 the registry did not answer within --timeout.
A closed standard output (`registry query --all | head -1`) ends any command quietly, status 0.
Logging: REGISTRY_LOG=info (connections, registrations), debug (9P traffic); default warn.")]
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
    Mount(mount::Args),
    Bench(registry_bench::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  registry completions bash > /etc/bash_completion.d/registry
  registry completions zsh > \"${fpath[1]}/_registry\"
  registry completions fish > ~/.config/fish/completions/registry.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    Man(man::Args),
}

/// The log filter from `REGISTRY_LOG` (default `warn`); an invalid one is said and replaced by
/// the default, not silently ignored.
fn log_filter() -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    match std::env::var("REGISTRY_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("registry: REGISTRY_LOG={v:?} is not a log filter ({e}); using warn");
            EnvFilter::new("warn")
        }),
        // zookeeper-client warns of every session the bench closes on purpose.
        _ => EnvFilter::new("warn,zookeeper_client=error"),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .init();
    pipe::quiet_on_closed_stdout();
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
            Command::Mount(a) => mount::run(a).await,
            Command::Bench(a) => registry_bench::run(a).await,
            Command::Completions { shell } => {
                // Written whole, so that a closed standard output is an error (crate::pipe)
                // rather than clap_complete's panic.
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "registry", &mut script);
                std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Man(a) => man::run(a, Cli::command()),
        }
    });
    match result {
        Ok(code) => code,
        // Nobody reads the output any more (`registry man | head`): done (crate::pipe).
        Err(e) if pipe::output_closed(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry: {e}");
            if e.is::<opts::TimedOut>() {
                ExitCode::from(opts::EXIT_TIMEOUT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// What a subcommand returns: an exit code, or a diagnostic that `main` prints.
pub type CmdResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;
