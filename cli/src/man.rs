//! `registry man`: the manual pages, roff, made from the command line's own help: `registry(1)`
//! and one page per subcommand, `registry-serve(1)`, `registry-key-issue(1)`, ..., the names the
//! top page refers to.

use crate::CmdResult;
use clap::Command;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Print a manual page, roff (`man -l <(registry man serve)`), or write them all (--dir).
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  man -l <(registry man)                 the top page, registry(1)
  man -l <(registry man serve)           registry-serve(1)
  registry man key issue                 registry-key-issue(1), roff
  registry man --dir /usr/local/share/man/man1 && man registry-watch
      every page as a file: registry.1, registry-serve.1, ...")]
pub struct Args {
    /// The subcommand whose page to print (`serve`; `key issue` for a subcommand's own);
    /// none: the top page, registry(1).
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
    subcommand: Vec<String>,
    /// Write every page into DIR instead (created if missing): registry.1 and
    /// registry-SUBCOMMAND.1 for each subcommand, and theirs.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs `registry man` on the command line `cli` (the whole `registry` command).
pub fn run(args: Args, cli: Command) -> CmdResult {
    let top = built(cli);
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let written = write_all(&top, dir)?;
        eprintln!(
            "registry: wrote {} manual pages to {}",
            written.len(),
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut page = &top;
    for word in &args.subcommand {
        let Some(sub) = visible(page).find(|c| c.get_name() == word) else {
            let names: Vec<&str> = visible(page).map(Command::get_name).collect();
            let whose = page.get_bin_name().unwrap_or("registry");
            eprintln!(
                "registry man: `{whose}` has no subcommand `{word}`; {}",
                if names.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("its subcommands: {}", names.join(", "))
                }
            );
            return Ok(ExitCode::from(2));
        };
        page = sub;
    }
    let mut roff = Vec::new();
    man(page).render(&mut roff)?;
    // A closed standard output is `main`'s to treat (crate::pipe).
    std::io::stdout().lock().write_all(&roff)?;
    Ok(ExitCode::SUCCESS)
}

/// The command built as the pages show it: every subcommand named `registry-SUB` (its page's
/// name) and `registry SUB` (its synopsis), and no `help` subcommand, which has no page.
fn built(cli: Command) -> Command {
    let mut cmd = cli.disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The page of `cmd`, its source the whole command's name and version (a subcommand's would be
/// its own name alone).
fn man(cmd: &Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd.clone()).source(format!("registry {}", env!("CARGO_PKG_VERSION")))
}

/// The subcommands that have a page.
fn visible(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|c| !c.is_hide_set())
}

/// Writes the page of `cmd` and of every subcommand under it into `dir`; the files written.
fn write_all(cmd: &Command, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let man = man(cmd);
    let mut written = vec![man.generate_to(dir).map_err(|e| {
        format!(
            "cannot write {}: {e}",
            dir.join(man.get_filename()).display()
        )
    })?];
    for sub in visible(cmd) {
        written.extend(write_all(sub, dir)?);
    }
    Ok(written)
}
