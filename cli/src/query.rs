//! `registry query`: Find services, like Inferno's ndb/regquery.
//!
//! Also home of [`RegistryOpt`], the `-m ADDR`, `-k KEYFILE` and `-C ALG` options every client
//! subcommand shares.

use crate::CmdResult;
use registries::auth::AuthInfo;
use registries::client::Registry;
use registries::manager::Connector;
use registries::net::DEFAULT_REGISTRY;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Command-line words as attribute/value pairs; an odd count is refused with Inferno's
/// diagnostic.
pub fn arg_pairs(words: &[String]) -> Result<Vec<(&str, &str)>, &'static str> {
    if !words.len().is_multiple_of(2) {
        return Err("odd attribute/value pairs");
    }
    Ok(words
        .chunks_exact(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect())
}

/// Where the registry is, and how to authenticate to it: the options shared by the client
/// subcommands.
#[derive(clap::Args, Clone)]
pub struct RegistryOpt {
    /// The registry: an Inferno dial string (tcp!host!port, net!host!registry, unix!/path), or a
    /// directory where the operating system has mounted one. `$registry` is read from the
    /// environment variable `registry` (default localhost).
    #[arg(short = 'm', value_name = "ADDR", default_value = DEFAULT_REGISTRY)]
    pub addr: String,
    /// Authenticate to the registry with Inferno's infpk1 using this key file before speaking
    /// 9P, as Inferno's `mount -k` does. A bare name that is not a file here is looked up in the
    /// key directory ($HOME/keyring). Without -k, no authentication.
    #[arg(short = 'k', value_name = "KEYFILE")]
    pub keyfile: Option<PathBuf>,
    /// The algorithms to protect the connection with after authenticating, as `mount -C`
    /// (e.g. sha1, rc4_256, sha1/rc4_256; default none). Needs -k.
    #[arg(short = 'C', value_name = "ALG", requires = "keyfile")]
    pub alg: Option<String>,
}

impl RegistryOpt {
    /// Connects to (or opens) the registry, authenticating first when `-k` was given.
    pub async fn open(&self) -> Result<Registry, registries::client::Error> {
        let Some(keyfile) = &self.keyfile else {
            // A registry that requires infpk1 answers 9P with auth messages, which the 9P
            // client can only call a bad message: say what is probably wrong.
            return Registry::open(&self.addr).await.map_err(|e| match e {
                registries::client::Error::Mount(m) => registries::client::Error::Mount(format!(
                    "{m} (a registry that requires authentication needs -k KEYFILE)"
                )),
                e => e,
            });
        };
        if Path::new(&self.addr).is_dir() {
            return Err(registries::client::Error::Auth(format!(
                "-k needs a dial string; {} is a directory",
                self.addr
            )));
        }
        let info = read_key(keyfile)?;
        let alg = self.alg.as_deref().unwrap_or("none");
        Registry::connect_with_key(&self.addr, &info, alg).await
    }

    /// Makes connections as [`RegistryOpt::open`] does, again and again, for a
    /// [`Manager`](registries::manager::Manager) that reconnects (the key file is read anew
    /// each time).
    pub fn connector(&self) -> Connector {
        let opt = self.clone();
        Connector::from_fn(move || {
            let opt = opt.clone();
            async move { opt.open().await }
        })
    }
}

/// Reads a key file named on the command line: the path as given, or else a bare name in the
/// key directory (Inferno resolves `-k name` under `/usr/<user>/keyring/`).
pub fn read_key(path: &Path) -> Result<AuthInfo, registries::client::Error> {
    let in_keydir = registries::auth::default_keydir().join(path);
    let path = if !path.exists() && path.components().count() == 1 && in_keydir.exists() {
        in_keydir.as_path()
    } else {
        path
    };
    AuthInfo::read(path).map_err(|e| {
        registries::client::Error::Auth(format!("can't read key file {}: {e}", path.display()))
    })
}

/// Find services, like Inferno's ndb/regquery.
///
/// Prints the services matching all the attribute/value pairs, one per line in the registry's
/// text format (`name attr val ...`, quoted as Inferno quotes). A value `*` matches any value of
/// an attribute the service has. With no pairs, reads queries from standard input, one per line
/// (prompting with `> ` on a terminal); an empty line lists every service.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry query proto styx              services with proto=styx
  registry query -n auth '*'             names of services that have an auth attribute
  registry query -m tcp!reghost!6675 proto styx
  registry query -m tcp!reghost!6675 -k alice.keyfile -C sha1/rc4_256 proto styx
                                         authenticate as the key's owner first
  echo | registry query                  every service
  registry query                         (on a terminal) prompt for queries")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// Print only the names of the matching services.
    #[arg(short = 'n')]
    names_only: bool,
    /// Attribute/value pairs to match.
    #[arg(value_name = "ATTR VAL", allow_hyphen_values = true)]
    pairs: Vec<String>,
}

/// Runs `registry query`.
pub async fn run(args: Args) -> CmdResult {
    let reg = args.reg.open().await?;
    if !args.pairs.is_empty() {
        // As regquery: each argument quoted, joined by blanks; the registry judges the pairs.
        let query = registries::wire::quote_words(args.pairs.iter().map(String::as_str));
        let text = reg.find_raw(&query).await?;
        print_reply(&text, args.names_only)?;
        return Ok(ExitCode::SUCCESS);
    }
    let prompt = std::io::stdin().is_terminal();
    let mut status = ExitCode::SUCCESS;
    loop {
        if prompt {
            print!("> ");
            std::io::stdout().flush()?;
        }
        let Some(line) = read_line().await? else {
            break;
        };
        match reg.find_raw(&line).await {
            Ok(text) => print_reply(&text, args.names_only)?,
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

/// Prints a `find` reply: as it is, or only the first word of each line.
fn print_reply(text: &str, names_only: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if names_only {
        for line in text.lines() {
            if let Some(name) = registries::wire::unquote(line).first() {
                writeln!(out, "{name}")?;
            }
        }
    } else {
        out.write_all(text.as_bytes())?;
    }
    out.flush()
}
