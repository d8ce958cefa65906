//! `registry query`: Find services, like Inferno's ndb/regquery.

use crate::CmdResult;
use crate::opts::RegistryOpt;
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

/// Find services, like Inferno's ndb/regquery.
///
/// Prints the services matching all the attribute/value pairs, one per line in the registry's
/// text format (`name attr val ...`, quoted as Inferno quotes). A value `*` matches any value of
/// an attribute the service has. With no pairs, reads queries from standard input, one per line
/// (prompting with `> ` on a terminal), as regquery does; an empty line lists every service, and
/// so does an input that ends before any line (`registry query --json | jq`, say). Scripts that
/// want every service say `--all`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry query proto styx              services with proto=styx
  registry query -n auth '*'             names of services that have an auth attribute
  registry query --all --json            every service, as one JSON array
  registry query -m 'tcp!reghost!6675' proto styx
  registry query -m reghost:6675 -k alice.keyfile -C sha1/rc4_256 proto styx
                                         authenticate as the key's owner first
  registry query -- key -1               a value that begins with `-`
  echo | registry query                  every service
  registry query < /dev/null             every service too (no query was read)
  registry query                         (on a terminal) prompt for queries

JSON (--json): [{\"name\": \"tcp!h!1\", \"attrs\": [[\"proto\", \"styx\"]], \"owner\": \"alice\",
\"persist\": false}, ...], attributes in the service's order, as `serve --http` gives them at
/v1/services (no owner through the shim, which does not carry it).

Exit status: 0 done, 1 the registry refused or failed, 2 usage, 3 no answer within --timeout.")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// Print only the names of the matching services.
    #[arg(short = 'n', long = "names-only")]
    names_only: bool,
    /// Print the matching services as one JSON array.
    #[arg(long, conflicts_with = "names_only")]
    json: bool,
    /// Every service (the same as an empty query), without reading standard input.
    #[arg(long, conflicts_with = "pairs")]
    all: bool,
    /// Attribute/value pairs to match (after `--` when a word begins with `-`).
    #[arg(value_name = "ATTR VAL")]
    pairs: Vec<String>,
}

/// Runs `registry query`.
pub async fn run(args: Args) -> CmdResult {
    if !args.pairs.len().is_multiple_of(2) {
        return crate::opts::usage("odd attribute/value pairs");
    }
    let reg = args.reg.open().await?;
    let style = Style::of(&args);
    if !args.pairs.is_empty() || args.all {
        // As regquery: each argument quoted, joined by blanks; the registry judges the pairs.
        let query = registries::wire::quote_words(args.pairs.iter().map(String::as_str));
        let text = args.reg.limit("find", reg.find_raw(&query)).await?;
        print_reply(&text, style, &owners(&reg, style).await)?;
        return Ok(ExitCode::SUCCESS);
    }
    let prompt = std::io::stdin().is_terminal();
    let mut status = ExitCode::SUCCESS;
    let mut read_any = false;
    loop {
        if prompt {
            print!("> ");
            std::io::stdout().flush()?;
        }
        let line = match read_line().await? {
            Some(line) => line,
            // An input that ended before any query: every service, as `--all` (a script piping
            // the output gets an answer, `[]` with --json, rather than nothing at all).
            None if !read_any && !prompt => String::new(),
            None => break,
        };
        read_any = true;
        match args.reg.limit("find", reg.find_raw(&line)).await {
            Ok(text) => print_reply(&text, style, &owners(&reg, style).await)?,
            Err(e) if e.is::<crate::opts::TimedOut>() => return Err(e),
            Err(e) => {
                eprintln!("registry: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    Ok(status)
}

/// One line of standard input without its newline, or `None` at end of file.
async fn read_line() -> std::io::Result<Option<String>> {
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let n = std::io::stdin().lock().read_line(&mut line)?;
        Ok::<_, std::io::Error>((n > 0).then_some(line))
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(line.map(|mut l| {
        if l.ends_with('\n') {
            l.pop();
        }
        l
    }))
}

/// How a reply is printed.
#[derive(Clone, Copy)]
enum Style {
    /// As the registry wrote it.
    Text,
    /// The first word of each line.
    Names,
    /// One JSON array.
    Json,
}

impl Style {
    fn of(args: &Args) -> Style {
        if args.json {
            Style::Json
        } else if args.names_only {
            Style::Names
        } else {
            Style::Text
        }
    }
}

/// For JSON, who owns each service (read after the reply: a service gone since has none);
/// nothing where the transport cannot tell.
async fn owners(reg: &registries::Registry, style: Style) -> HashMap<String, String> {
    match style {
        Style::Json => reg.owners().await.unwrap_or_default(),
        _ => HashMap::new(),
    }
}

/// Prints a `find` reply in `style`, with the owners known.
fn print_reply(text: &str, style: Style, owners: &HashMap<String, String>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match style {
        Style::Text => out.write_all(text.as_bytes())?,
        Style::Names => {
            for line in text.lines() {
                if let Some(name) = registries::wire::unquote(line).first() {
                    writeln!(out, "{name}")?;
                }
            }
        }
        Style::Json => {
            let services: Vec<serde_json::Value> = registries::wire::parse_services(text)
                .iter()
                .map(|s| crate::json::service(&s.name, s.pairs(), owners.get(&s.name)))
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(services))?;
        }
    }
    out.flush()
}
