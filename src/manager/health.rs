//! Health checks on the registering side, as Consul's agent checks: a service the manager keeps
//! stays listed while it answers, not merely while its registrar lives. The registry protocol is
//! unchanged: a critical service's registration is withdrawn, and made again when it recovers.
//!
//! Each check of a service runs in its own task on the runtime, every [`CheckSpec::interval`],
//! cut off at [`CheckSpec::timeout`]. A check's state follows its results: the first result sets
//! it at once (until then the service is not listed); after that it turns critical after
//! [`CheckSpec::fail_after`] consecutive failures and back after [`CheckSpec::pass_after`]
//! consecutive passes or warnings. The service is listed while none of its checks is critical.

use super::supervisor::Cmd;
use std::fmt;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What a check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Passing when a TCP connection to `addr` (`host:port` or an Inferno dial string such as
    /// `tcp!host!port`) is made; critical otherwise.
    Tcp {
        /// `host:port` or a dial string.
        addr: String,
    },
    /// A `GET` of `url` (`http://host[:port]/path`): 2xx passing, 429 warning, anything else (or
    /// no answer) critical.
    Http {
        /// The URL, `http://` only.
        url: String,
    },
    /// A command run without a shell: exit status 0 passing, 1 warning, anything else (or still
    /// running at the timeout, when it is killed) critical.
    Exec {
        /// The program and its arguments.
        command: Vec<String>,
    },
}

/// Why a check's text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad check {text:?}: {why}")]
pub struct CheckParseError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
}

impl Check {
    /// Parses `host:port` or a dial string (TCP), `http://host[:port]/path` (HTTP) or
    /// `exec:COMMAND ARGS` (arguments split as a shell would, with `'…'`, `"…"` and `\`, but run
    /// without one). `https://` is refused for now.
    pub fn parse(text: &str) -> Result<Check, CheckParseError> {
        let bad = |why: &str| CheckParseError {
            text: text.to_string(),
            why: why.to_string(),
        };
        let text = text.trim();
        if let Some(cmd) = text.strip_prefix("exec:") {
            let command = split_words(cmd).map_err(&bad)?;
            if command.is_empty() {
                return Err(bad("no command"));
            }
            return Ok(Check::Exec { command });
        }
        if text.starts_with("https://") {
            return Err(bad("https checks are not supported yet (use http://)"));
        }
        if text.starts_with("http://") {
            parse_url(text).map_err(&bad)?;
            return Ok(Check::Http {
                url: text.to_string(),
            });
        }
        if text.contains("://") {
            return Err(bad("only http:// URLs are checked"));
        }
        let dial = text.contains('!');
        let host_port = text
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !dial && !host_port {
            return Err(bad("expected host:port, a dial string, http://… or exec:…"));
        }
        Ok(Check::Tcp {
            addr: text.to_string(),
        })
    }

    /// Runs the check once, giving up (critical) after `timeout`; the state and a line saying
    /// why.
    pub async fn run(&self, timeout: Duration) -> (Health, String) {
        if let Check::Exec { command } = self {
            // Its own time limit, so that the process is killed and reaped.
            return run_exec(command, timeout).await;
        }
        let probe = async {
            match self {
                Check::Tcp { addr } => run_tcp(addr).await,
                Check::Http { url } => run_http(url).await,
                Check::Exec { .. } => unreachable!(),
            }
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(r) => r,
            Err(_) => (Health::Critical, format!("timed out after {timeout:?}")),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Tcp { addr } => write!(f, "tcp {addr}"),
            Check::Http { url } => write!(f, "http {url}"),
            Check::Exec { command } => write!(f, "exec {}", command.join(" ")),
        }
    }
}

/// A check's state, with Consul's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Healthy: the service is listed.
    Passing,
    /// Degraded but still serving: the service stays listed.
    Warning,
    /// Not serving: the service's registration is withdrawn.
    Critical,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Passing => "passing",
            Health::Warning => "warning",
            Health::Critical => "critical",
        })
    }
}

/// A check and how it is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// What to probe.
    pub check: Check,
    /// How often (start to start). Default 10 s.
    pub interval: Duration,
    /// How long one run may take before it counts as critical. Default 5 s.
    pub timeout: Duration,
    /// Consecutive failures before the check turns critical. Default 1.
    pub fail_after: u32,
    /// Consecutive passes (or warnings) before a critical check recovers. Default 1.
    pub pass_after: u32,
}

impl CheckSpec {
    /// `check` with the default timing and thresholds.
    pub fn new(check: Check) -> CheckSpec {
        CheckSpec {
            check,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            fail_after: 1,
            pass_after: 1,
        }
    }

    /// [`Check::parse`] with the defaults.
    pub fn parse(text: &str) -> Result<CheckSpec, CheckParseError> {
        Check::parse(text).map(CheckSpec::new)
    }
}

/// A check's state from its results: the first sets it; then the thresholds apply.
#[derive(Debug, Default)]
struct Tracker {
    state: Option<Health>,
    fails: u32,
    passes: u32,
}

impl Tracker {
    /// Counts `result`; the new state if it changed.
    fn record(&mut self, result: Health, fail_after: u32, pass_after: u32) -> Option<Health> {
        let next = if result == Health::Critical {
            self.passes = 0;
            self.fails += 1;
            match self.state {
                Some(Health::Critical) => None,
                Some(_) if self.fails < fail_after.max(1) => None,
                _ => Some(Health::Critical),
            }
        } else {
            self.fails = 0;
            self.passes += 1;
            match self.state {
                Some(Health::Critical) if self.passes < pass_after.max(1) => None,
                Some(s) if s == result => None,
                _ => Some(result),
            }
        };
        if next.is_some() {
            self.state = next;
        }
        next
    }
}

/// Starts check number `index` of service `id` (named `name` in the log), reporting each change
/// between critical and not to the supervisor. It runs until aborted or the manager stops.
pub(crate) fn spawn(
    id: u64,
    index: usize,
    name: String,
    spec: CheckSpec,
    cmds: mpsc::UnboundedSender<Cmd>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(spec.interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tracker = Tracker::default();
        loop {
            ticks.tick().await;
            let (result, output) = spec.check.run(spec.timeout).await;
            let Some(state) = tracker.record(result, spec.fail_after, spec.pass_after) else {
                continue;
            };
            tracing::info!("registry: {name}: check {state} ({output})");
            let cmd = Cmd::CheckState {
                id,
                index,
                critical: state == Health::Critical,
            };
            if cmds.send(cmd).is_err() {
                return;
            }
        }
    })
}

async fn run_tcp(addr: &str) -> (Health, String) {
    let r = if addr.contains('!') {
        crate::client::dial(addr)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    } else {
        TcpStream::connect(addr)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    };
    match r {
        Ok(()) => (Health::Passing, format!("connected to {addr}")),
        Err(e) => (Health::Critical, format!("{addr}: {e}")),
    }
}

/// `http://host[:port]/path` as the authority to connect to, the Host header and the path.
fn parse_url(url: &str) -> Result<(String, String, String), &'static str> {
    let rest = url.strip_prefix("http://").ok_or("not an http:// URL")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err("expected http://host[:port]/path");
    }
    // A bracketed IPv6 address keeps its colons.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'));
    let connect = if has_port {
        let (_, port) = authority.rsplit_once(':').unwrap_or_default();
        port.parse::<u16>().map_err(|_| "bad port")?;
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((connect, authority.to_string(), path))
}

/// A GET, written by hand rather than with an HTTP client crate: a check needs only the status
/// line of the answer, and hyper or reqwest would add dozens of crates to the lean client build
/// (README, "Cargo features"). HTTP/1.1 with `Connection: close`; the body is never read.
async fn run_http(url: &str) -> (Health, String) {
    let status = async {
        let (connect, host, path) = parse_url(url).map_err(str::to_string)?;
        let mut s = TcpStream::connect(&connect)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: registries-check\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        );
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(s.take(1024))
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        let line = line.trim_end().to_string();
        let mut words = line.split_whitespace();
        let code = match (words.next(), words.next()) {
            (Some(v), Some(c)) if v.starts_with("HTTP/") => c.parse::<u16>().ok(),
            _ => None,
        };
        code.map(|c| (c, line.clone()))
            .ok_or_else(|| format!("not an HTTP status line: {line:?}"))
    };
    match status.await {
        Ok((code, line)) => {
            let health = match code {
                200..=299 => Health::Passing,
                429 => Health::Warning,
                _ => Health::Critical,
            };
            (health, format!("{url}: {line}"))
        }
        Err(e) => (Health::Critical, format!("{url}: {e}")),
    }
}

/// Runs `command`; at `timeout` the process is killed and reaped (`kill_on_drop` covers a task
/// aborted meanwhile).
async fn run_exec(command: &[String], timeout: Duration) -> (Health, String) {
    let mut child = match tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (Health::Critical, format!("{}: {e}", command[0])),
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let (status, out, err) = tokio::join!(child.wait(), read_some(stdout), read_some(stderr));
        (status, out + &err)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((Ok(status), output)) => {
            let health = match status.code() {
                Some(0) => Health::Passing,
                Some(1) => Health::Warning,
                _ => Health::Critical,
            };
            let first = output.lines().next().unwrap_or("").trim();
            let first: String = first.chars().take(200).collect();
            (
                health,
                format!("{status}; {first}")
                    .trim_end_matches("; ")
                    .to_string(),
            )
        }
        Ok((Err(e), _)) => (Health::Critical, format!("{}: {e}", command[0])),
        Err(_) => {
            // Kills and waits for it, so no zombie is left.
            let _ = child.kill().await;
            (
                Health::Critical,
                format!("{}: killed after {timeout:?}", command[0]),
            )
        }
    }
}

/// Up to 4 KiB of a child's output (the rest is drained so that it never blocks writing).
async fn read_some<R: tokio::io::AsyncRead + Unpin>(r: Option<R>) -> String {
    let Some(mut r) = r else {
        return String::new();
    };
    let mut buf = Vec::new();
    let _ = (&mut r).take(4096).read_to_end(&mut buf).await;
    let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// Splits a command line into words as a shell would (`'…'`, `"…"`, `\`), without expanding
/// anything.
fn split_words(s: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated '"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("unterminated \""),
                        },
                        Some(c) => w.push(c),
                        None => return Err("unterminated \""),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("trailing \\"),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Check::parse("localhost:8080").unwrap(),
            Check::Tcp {
                addr: "localhost:8080".into()
            }
        );
        assert!(matches!(
            Check::parse("tcp!h!7001").unwrap(),
            Check::Tcp { .. }
        ));
        assert!(matches!(
            Check::parse("http://h:8080/health").unwrap(),
            Check::Http { .. }
        ));
        assert!(Check::parse("https://h/health").is_err());
        assert!(Check::parse("localhost").is_err());
        assert!(Check::parse("exec:").is_err());
        assert_eq!(
            Check::parse("exec:sh -c 'exit 2'").unwrap(),
            Check::Exec {
                command: vec!["sh".into(), "-c".into(), "exit 2".into()]
            }
        );
        assert_eq!(
            split_words(r#"a "b c" d\ e ''"#).unwrap(),
            vec!["a", "b c", "d e", ""]
        );
        assert_eq!(
            parse_url("http://h/x?y").unwrap(),
            ("h:80".into(), "h".into(), "/x?y".into())
        );
        assert_eq!(
            parse_url("http://h:81").unwrap(),
            ("h:81".into(), "h:81".into(), "/".into())
        );
    }

    #[test]
    fn thresholds() {
        use Health::*;
        let mut t = Tracker::default();
        assert_eq!(t.record(Passing, 2, 3), Some(Passing));
        assert_eq!(t.record(Warning, 2, 3), Some(Warning));
        assert_eq!(t.record(Critical, 2, 3), None);
        assert_eq!(t.record(Critical, 2, 3), Some(Critical));
        assert_eq!(t.record(Passing, 2, 3), None);
        assert_eq!(t.record(Passing, 2, 3), None);
        assert_eq!(t.record(Passing, 2, 3), Some(Passing));
        let mut first = Tracker::default();
        assert_eq!(first.record(Critical, 3, 3), Some(Critical));
    }
}
