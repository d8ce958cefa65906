//! Inferno dial strings (spec/infpk1.md §8, Inferno's dial(2)): `network!netaddr!service`.
//!
//! `network` is `tcp`, `net` (any network: TCP here) or `unix`; `netaddr` is a host name, an IP
//! address, `*` (every address, for announcing) or `$attr`, looked up in the environment variable
//! `attr` (so `$registry` reads `$registry`, falling back to `localhost`); `service` is a decimal
//! port or a name from Inferno's `lib/ndb/inferno` table.

use std::fmt;
use std::path::PathBuf;

/// Why a dial string cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The string is empty or has an empty field.
    #[error("bad dial string: {0}")]
    Syntax(String),
    /// The network is not one this host can use.
    #[error("unknown network: {0}")]
    Network(String),
    /// The service is neither a number nor a known service name.
    #[error("unknown service: {0}")]
    Service(String),
    /// The address is well formed but the connection could not be made: `ADDR: why`. `kind`
    /// tells a refused connection from an unknown host or a timeout without reading `why`.
    #[error("{addr}: {why}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// The operating system's kind of failure.
        kind: std::io::ErrorKind,
        /// Its text.
        why: String,
    },
}

/// Inferno's well-known TCP services (`lib/ndb/inferno`).
pub const SERVICES: &[(&str, u16)] = &[
    ("styx", 6666),
    ("mpeg", 6667),
    ("rstyx", 6668),
    ("infdb", 6669),
    ("infweb", 6670),
    ("infsigner", 6671),
    ("infcsigner", 6672),
    ("inflogin", 6673),
    ("infsds", 6674),
    ("registry", 6675),
    ("internalreg", 6676),
    ("cpupoolreg", 6676),
    ("infkey", 6677),
    ("infsched", 6678),
    ("infgamelogin", 6660),
    ("9fs", 564),
];

/// The port of a service name or decimal port number.
pub fn service_port(service: &str) -> Result<u16, DialError> {
    if let Ok(port) = service.parse::<u16>() {
        return Ok(port);
    }
    SERVICES
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, port)| *port)
        .ok_or_else(|| DialError::Service(service.to_string()))
}

/// Inferno's `netmkaddr(addr, defnet, defsvc)`: fills in a missing network and service.
pub fn netmkaddr(addr: &str, defnet: &str, defsvc: &str) -> String {
    match addr.matches('!').count() {
        0 if defsvc.is_empty() => format!("{defnet}!{addr}"),
        0 => format!("{defnet}!{addr}!{defsvc}"),
        1 if !defsvc.is_empty() => format!("{addr}!{defsvc}"),
        _ => addr.to_string(),
    }
}

/// A resolved place to dial or to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// A TCP host (name, address or `*`) and port.
    Tcp {
        /// Host name or address; `*` means every address when announcing.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix-domain socket.
    Unix(PathBuf),
}

impl Addr {
    /// Parses a dial string, filling in `defsvc` when the service is missing
    /// (as `netmkaddr(s, "net", defsvc)` does).
    // Not nom: after `netmkaddr`, three fields split on `!`, as dial(2) splits them.
    pub fn parse(s: &str, defsvc: &str) -> Result<Addr, DialError> {
        if s.is_empty() {
            return Err(DialError::Syntax(s.to_string()));
        }
        if let Some(path) = s.strip_prefix("unix!") {
            if path.is_empty() {
                return Err(DialError::Syntax(s.to_string()));
            }
            return Ok(Addr::Unix(PathBuf::from(path)));
        }
        let full = netmkaddr(s, "net", defsvc);
        let fields: Vec<&str> = full.split('!').collect();
        let [net, host, service] = fields[..] else {
            return Err(DialError::Syntax(s.to_string()));
        };
        if !matches!(net, "tcp" | "net") {
            return Err(DialError::Network(net.to_string()));
        }
        if host.is_empty() || service.is_empty() {
            return Err(DialError::Syntax(s.to_string()));
        }
        Ok(Addr::Tcp {
            host: expand_host(host),
            port: service_port(service)?,
        })
    }

    /// The `host:port` form that the operating system resolves, for TCP; `*` becomes `0.0.0.0`.
    pub fn socket_addr_string(&self) -> Option<String> {
        match self {
            Addr::Tcp { host, port } if host == "*" => Some(format!("0.0.0.0:{port}")),
            Addr::Tcp { host, port } if host.contains(':') => Some(format!("[{host}]:{port}")),
            Addr::Tcp { host, port } => Some(format!("{host}:{port}")),
            Addr::Unix(_) => None,
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp { host, port } => write!(f, "tcp!{host}!{port}"),
            Addr::Unix(p) => write!(f, "unix!{}", p.display()),
        }
    }
}

/// Expands `$attr` from the environment variable `attr`; `$registry` falls back to `localhost`.
fn expand_host(host: &str) -> String {
    match host.strip_prefix('$') {
        Some(var) => std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "localhost".to_string()),
        None => host.to_string(),
    }
}

/// The default registry address, `net!$registry!registry`, as Registry.connect dials it.
pub const DEFAULT_REGISTRY: &str = "net!$registry!registry";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmkaddr_matches_inferno() {
        assert_eq!(netmkaddr("host", "net", "styx"), "net!host!styx");
        assert_eq!(netmkaddr("host", "tcp", ""), "tcp!host");
        assert_eq!(netmkaddr("tcp!host", "net", "styx"), "tcp!host!styx");
        assert_eq!(netmkaddr("tcp!host", "net", ""), "tcp!host");
        assert_eq!(netmkaddr("tcp!host!1", "net", "styx"), "tcp!host!1");
    }

    #[test]
    fn parses_addresses() {
        assert_eq!(
            Addr::parse("tcp!127.0.0.1!6675", "").unwrap(),
            Addr::Tcp {
                host: "127.0.0.1".into(),
                port: 6675
            }
        );
        assert_eq!(
            Addr::parse("net!example.org!registry", "").unwrap(),
            Addr::Tcp {
                host: "example.org".into(),
                port: 6675
            }
        );
        assert_eq!(
            Addr::parse("example.org", "registry").unwrap(),
            Addr::Tcp {
                host: "example.org".into(),
                port: 6675
            }
        );
        assert_eq!(
            Addr::parse("unix!/tmp/s", "").unwrap(),
            Addr::Unix("/tmp/s".into())
        );
        assert_eq!(
            Addr::parse("tcp!*!6675", "")
                .unwrap()
                .socket_addr_string()
                .unwrap(),
            "0.0.0.0:6675"
        );
        assert!(matches!(
            Addr::parse("il!h!1", ""),
            Err(DialError::Network(_))
        ));
        assert!(matches!(
            Addr::parse("tcp!h!nosuch", ""),
            Err(DialError::Service(_))
        ));
        assert!(matches!(
            Addr::parse("tcp!h", ""),
            Err(DialError::Syntax(_))
        ));
    }
}
