//! What the client subcommands share: where the registry is (`-m`, repeatable), how to
//! authenticate to it (`-k`, `-C`), how long to wait for it (`--timeout`), and their words.

use registries::auth::AuthInfo;
use registries::client::{Error, Registry};
use registries::manager::Connector;
use registries::net::DialError;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The exit status of a command that gave up waiting for the registry (1 is any other
/// failure, 2 a usage error).
pub const EXIT_TIMEOUT: u8 = 3;

/// A usage error found after clap's parsing (the words themselves are wrong): says so on
/// standard error as `main` says any diagnostic, and exits with status 2, as clap's do.
pub fn usage(what: &str) -> crate::CmdResult {
    eprintln!("registry: {what} (see --help)");
    Ok(std::process::ExitCode::from(2))
}

/// The registry did not answer in time: `main` exits with [`EXIT_TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("{what}: no answer within {secs} s (--timeout)")]
pub struct TimedOut {
    /// What was being waited for.
    pub what: String,
    /// The limit, in seconds.
    pub secs: f64,
}

/// Where the registry is, how to authenticate to it and how long to wait for it.
#[derive(clap::Args, Clone)]
pub struct RegistryOpt {
    /// The registry: an Inferno dial string (tcp!host!port, net!host!registry, unix!/path),
    /// host:port, or a directory where the operating system has mounted one. Repeat for
    /// failover: the first that answers is used, in the order given. Default: the environment
    /// variable `registry` (a host, host:port or a dial string), else localhost, port 6675.
    #[arg(short = 'm', long = "registry", value_name = "ADDR")]
    pub addrs: Vec<String>,
    /// Authenticate to the registry with Inferno's infpk1 using this key file before speaking
    /// 9P, as Inferno's `mount -k` does. A bare name that is not a file here is looked up in the
    /// key directory ($HOME/keyring). Without -k, no authentication.
    #[arg(short = 'k', long = "key", value_name = "KEYFILE")]
    pub keyfile: Option<PathBuf>,
    /// The algorithms to protect the connection with after authenticating, as `mount -C`
    /// (e.g. sha1, rc4_256, sha1/rc4_256; default none). Needs -k.
    #[arg(short = 'C', long = "alg", value_name = "ALG", requires = "keyfile")]
    pub alg: Option<String>,
    /// Give up when the registry has not answered within this many seconds: dialling,
    /// authenticating, and each exchange after (decimals allowed; 0: wait for ever). On expiry
    /// the command exits with status 3.
    #[arg(long = "timeout", value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    pub timeout: f64,
    /// Give up a 9P connection whose registry has said nothing for this many seconds: after
    /// half of it in silence a Tstat of the root goes out, which every registry answers. A
    /// registry cut off from the network sends no reset, and only this notices it in time for
    /// `register` to move to the next -m. Decimals allowed; 0: off.
    #[arg(long = "heartbeat", value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub heartbeat: f64,
}

impl RegistryOpt {
    /// The registries to try, in order, as dial strings (or directories).
    pub fn addrs(&self) -> Vec<String> {
        if self.addrs.is_empty() {
            return vec![default_addr()];
        }
        self.addrs.iter().map(|a| resolve_addr(a)).collect()
    }

    /// Runs `f` within `--timeout`, saying `what` was being waited for if it expires.
    pub async fn limit<T, E>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Box<dyn std::error::Error + Send + Sync>>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if self.timeout <= 0.0 {
            return f.await.map_err(Into::into);
        }
        match tokio::time::timeout(Duration::from_secs_f64(self.timeout), f).await {
            Ok(r) => r.map_err(Into::into),
            Err(_) => Err(Box::new(TimedOut {
                what: what.to_string(),
                secs: self.timeout,
            })),
        }
    }

    /// Connects to the first registry that answers, each within `--timeout`, authenticating
    /// first when `-k` was given. When none answers, the last one's error, or [`TimedOut`] when
    /// every one timed out.
    pub async fn open(&self) -> Result<Registry, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.open_which().await?.1)
    }

    /// As [`RegistryOpt::open`], with the place in `-m`'s list of the registry used.
    pub async fn open_which(
        &self,
    ) -> Result<(usize, Registry), Box<dyn std::error::Error + Send + Sync>> {
        let addrs = self.addrs();
        let mut last = None;
        for (i, addr) in addrs.iter().enumerate() {
            match self.limit(addr, open_one(addr, self)).await {
                Ok(reg) => return Ok((i, reg)),
                Err(e) => {
                    if i + 1 < addrs.len() {
                        eprintln!("registry: {e}; trying {}", addrs[i + 1]);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| "no registry to connect to".into()))
    }

    /// Makes connections as [`RegistryOpt::open`] does, again and again, for a
    /// [`Manager`](registries::manager::Manager) that reconnects: the key file is read anew each
    /// time, each registry has `--timeout` to answer, and each connection after the first
    /// starts with the registry after the one used last ([`Connector::failover`]). `skip` is how
    /// many registries to move the first one along: after [`RegistryOpt::open`] used the `i`th,
    /// `i + 1`, so that a lost connection tries the others first.
    pub fn connector(&self, skip: usize) -> Connector {
        let mut addrs = self.addrs();
        let n = addrs.len();
        addrs.rotate_left(skip % n.max(1));
        Connector::failover(addrs.into_iter().map(|addr| {
            let opt = self.clone();
            Connector::from_fn(move || {
                let (addr, opt) = (addr.clone(), opt.clone());
                async move {
                    if opt.timeout <= 0.0 {
                        return open_one(&addr, &opt).await;
                    }
                    let limit = Duration::from_secs_f64(opt.timeout);
                    match tokio::time::timeout(limit, open_one(&addr, &opt)).await {
                        Ok(r) => r,
                        Err(_) => Err(Error::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("{addr}: no answer within {} s (--timeout)", opt.timeout),
                        ))),
                    }
                }
            })
        }))
    }

    /// The heartbeat bound of `--heartbeat`.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat.max(0.0))
    }
}

/// Connects to (or opens) the registry at `addr` as [`connect_one`] does, with the heartbeat
/// of `--heartbeat`.
async fn open_one(addr: &str, opt: &RegistryOpt) -> Result<Registry, Error> {
    let reg = connect_one(addr, opt).await?;
    reg.set_heartbeat(opt.heartbeat());
    Ok(reg)
}

/// Connects to (or opens) the registry at `addr`, authenticating first when `-k` was given, and
/// says what is probably wrong when the two sides disagree about authentication.
async fn connect_one(addr: &str, opt: &RegistryOpt) -> Result<Registry, Error> {
    let Some(keyfile) = &opt.keyfile else {
        // A registry that requires infpk1 answers 9P with auth messages, which the 9P client
        // can only call a bad message.
        return Registry::open(addr).await.map_err(|e| match e {
            Error::Mount(m) if speaks_infpk1(&m) => Error::Mount(format!(
                "{addr}: this registry requires authentication: use -k KEYFILE ({m})"
            )),
            Error::Mount(m) => match other_protocol(&m) {
                Some(what) => Error::Mount(format!("{addr}: {what}")),
                None => Error::Mount(format!("{addr}: {m}")),
            },
            e => with_dial_hint(addr, e),
        });
    };
    if Path::new(addr).is_dir() {
        return Err(Error::Auth(format!(
            "-k needs a dial string; {addr} is a directory"
        )));
    }
    let info = read_key(keyfile)?;
    let alg = opt.alg.as_deref().unwrap_or("none");
    Registry::connect_with_key(addr, &info, alg)
        .await
        .map_err(|e| with_dial_hint(addr, e))
        .map_err(|e| match e {
            Error::Auth(m) if m.contains("hungup") || m.contains("hung up") => {
                Error::Auth(format!(
                    "{addr}: {m}: the server did not take part in authentication \
                 (is it running with --auth?)"
                ))
            }
            e => e,
        })
}

/// The four bytes of a mount failure's "message size N" read as a 9P size field, if it says one.
fn size_bytes(mount_error: &str) -> Option<[u8; 4]> {
    let rest = mount_error.split("message size ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u32>().ok().map(u32::to_le_bytes)
}

/// What else answered, when a 9P mount failure's "size" is the start of another protocol's
/// reply: an HTTP server's `HTTP`, or a TLS record (an alert or a handshake, version 3.x).
fn other_protocol(mount_error: &str) -> Option<&'static str> {
    match size_bytes(mount_error)? {
        [b'H', b'T', b'T', b'P'] => Some(
            "this is an HTTP server, not a 9P registry (the registry's HTTP side? use \
             --registry HOST:PORT of its 9P listener)",
        ),
        [0x15 | 0x16, 0x03, 0..=4, _] => Some("this is a TLS server, not a 9P registry"),
        _ => None,
    }
}

/// Whether a 9P mount failure is what an infpk1 server's first message looks like to 9P: its
/// `NNNN\n` header read as a 9P size field, four ASCII digits or newlines.
fn speaks_infpk1(mount_error: &str) -> bool {
    size_bytes(mount_error).is_some_and(|b| b.iter().all(|b| b.is_ascii_digit() || *b == b'\n'))
}

/// A dial error about the form of `addr` says which forms there are.
fn with_dial_hint(addr: &str, e: Error) -> Error {
    match e {
        Error::Dial(DialError::Syntax(_)) => Error::Dial(DialError::Syntax(format!(
            "{}: use tcp!host!port or host:port",
            shell_word(addr)
        ))),
        Error::Dial(m @ (DialError::Network(_) | DialError::Service(_))) => {
            Error::Dial(DialError::Syntax(format!(
                "{} ({m}): use tcp!host!port or host:port",
                shell_word(addr)
            )))
        }
        e => e,
    }
}

/// The default registry: the environment variable `registry` (a host, `host:port`, `host!port`
/// or a whole dial string), else Inferno's `net!$registry!registry` (localhost, port 6675).
pub fn default_addr() -> String {
    match std::env::var("registry") {
        Ok(v) if v.contains('!') || v.contains(':') => resolve_addr(&v),
        // A bare host is what Inferno's `$registry` is: the library expands it.
        _ => registries::net::DEFAULT_REGISTRY.to_string(),
    }
}

/// The networks a dial string may start with.
const NETWORKS: &[&str] = &["tcp", "net", "unix", "udp", "il"];

/// `-m` as given, as a dial string: `host:port` and `[v6addr]:port` become `tcp!host!port`;
/// `host!port` (no network) becomes `tcp!host!port`; dial strings and directories stay.
// Not nom: a few prefix and separator checks that turn the usual spellings into a dial string.
pub fn resolve_addr(addr: &str) -> String {
    if Path::new(addr).is_dir() {
        return addr.to_string();
    }
    if let Some((net, _)) = addr.split_once('!') {
        if NETWORKS.contains(&net) {
            return addr.to_string();
        }
        if addr.matches('!').count() == 1 {
            return format!("tcp!{addr}");
        }
        return addr.to_string();
    }
    if let Some(rest) = addr.strip_prefix('[')
        && let Some((host, port)) = rest.split_once("]:")
    {
        return format!("tcp!{host}!{port}");
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !port.is_empty() => {
            format!("tcp!{host}!{port}")
        }
        _ => addr.to_string(),
    }
}

/// A dial string as a shell word a user can paste: quoted when it holds a `!` (bash's history
/// expansion) or anything else the shell would take.
pub fn shell_word(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain && !s.is_empty() {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

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

/// Reads a key file named on the command line: the path as given, or else a bare name in the
/// key directory (Inferno resolves `-k name` under `/usr/<user>/keyring/`).
pub fn read_key(path: &Path) -> Result<AuthInfo, Error> {
    let in_keydir = registries::auth::default_keydir().join(path);
    let path = if !path.exists() && path.components().count() == 1 && in_keydir.exists() {
        in_keydir.as_path()
    } else {
        path
    };
    AuthInfo::read(path)
        .map_err(|e| Error::Auth(format!("can't read key file {}: {e}", path.display())))
}

/// A number of seconds that makes a [`Duration`]: not negative, not too large, a number.
pub fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(v).map_err(|e| format!("{e}"))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_every_form_become_dial_strings() {
        assert_eq!(resolve_addr("tcp!h!1"), "tcp!h!1");
        assert_eq!(resolve_addr("net!h!registry"), "net!h!registry");
        assert_eq!(resolve_addr("unix!/tmp/s"), "unix!/tmp/s");
        assert_eq!(resolve_addr("127.0.0.1:6675"), "tcp!127.0.0.1!6675");
        assert_eq!(resolve_addr("reghost:7"), "tcp!reghost!7");
        assert_eq!(resolve_addr("[::1]:6675"), "tcp!::1!6675");
        assert_eq!(resolve_addr("127.0.0.1!17675"), "tcp!127.0.0.1!17675");
        assert_eq!(resolve_addr("reghost"), "reghost");
        assert_eq!(resolve_addr("/"), "/");
    }

    #[test]
    fn an_infpk1_greeting_is_told_from_other_bad_messages() {
        let size = u32::from_le_bytes(*b"0001");
        assert!(speaks_infpk1(&format!(
            "bad message from server: message size {size} exceeds msize 8216"
        )));
        assert!(!speaks_infpk1(
            "bad message from server: message size 70000 exceeds msize 8216"
        ));
        assert!(!speaks_infpk1("connection closed"));
    }

    #[test]
    fn an_http_or_tls_answer_is_named() {
        let said = |b: &[u8; 4]| {
            let size = u32::from_le_bytes(*b);
            other_protocol(&format!(
                "bad message from server: message size {size} exceeds msize 65560"
            ))
        };
        assert!(said(b"HTTP").is_some_and(|w| w.contains("HTTP server")));
        assert!(said(&[0x15, 0x03, 0x01, 0x00]).is_some_and(|w| w.contains("TLS")));
        assert_eq!(said(b"0001"), None);
    }

    #[test]
    fn dial_strings_are_quoted_for_the_shell() {
        assert_eq!(shell_word("tcp!127.0.0.1!6675"), "'tcp!127.0.0.1!6675'");
        assert_eq!(shell_word("127.0.0.1:6675"), "127.0.0.1:6675");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
