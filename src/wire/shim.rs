//! The TCP shim's line protocol (spec/registry.md §8), shared by the shim server and the shim
//! client: the three ports, the `READY` line, and the line limits.

use std::fmt;
use std::str::FromStr;

/// Longest line the server accepts on the new and find ports (a registration, an update or a
/// query). Longer lines close the connection: they could not be one 9P write anyway.
pub const MAX_LINE: usize = 64 * 1024;

/// Longest event line a client accepts before its newline (the Perl client's 1 KiB).
pub const MAX_EVENT_LINE: usize = 1024;

/// Largest find reply our shim client reads (the Perl client stops at 1 MiB; we allow more).
pub const MAX_FIND_REPLY: usize = 16 * 1024 * 1024;

/// The line the event port sends once it is watching.
pub const READY: &str = "READY\n";

/// The three shim ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimPorts {
    /// Registration port (default 6701).
    pub new: u16,
    /// Query port (default 6702).
    pub find: u16,
    /// Change notification port (default 6703).
    pub event: u16,
}

impl ShimPorts {
    /// 6701, 6702, 6703, as Inferno::RegMgr::TCP expects.
    pub const DEFAULT: ShimPorts = ShimPorts {
        new: 6701,
        find: 6702,
        event: 6703,
    };

    /// Port 0 three times: let the system choose (tests, and `registry serve` on port 0).
    pub const EPHEMERAL: ShimPorts = ShimPorts {
        new: 0,
        find: 0,
        event: 0,
    };
}

impl Default for ShimPorts {
    fn default() -> Self {
        ShimPorts::DEFAULT
    }
}

impl fmt::Display for ShimPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{}", self.new, self.find, self.event)
    }
}

/// Parses `NEW,FIND,EVENT`, e.g. `6701,6702,6703`.
impl FromStr for ShimPorts {
    type Err = String;

    // Not nom: three comma-separated numbers.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ports: Vec<&str> = s.split(',').map(str::trim).collect();
        let [new, find, event] = ports[..] else {
            return Err(format!("expected NEW,FIND,EVENT ports, got {s:?}"));
        };
        let p = |v: &str| v.parse::<u16>().map_err(|e| format!("bad port {v:?}: {e}"));
        Ok(ShimPorts {
            new: p(new)?,
            find: p(find)?,
            event: p(event)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_and_print() {
        let p: ShimPorts = "1,2,3".parse().unwrap();
        assert_eq!(
            p,
            ShimPorts {
                new: 1,
                find: 2,
                event: 3
            }
        );
        assert_eq!(p.to_string(), "1,2,3");
        assert!("1,2".parse::<ShimPorts>().is_err());
        assert!("1,2,x".parse::<ShimPorts>().is_err());
        assert!("1,2,70000".parse::<ShimPorts>().is_err());
    }
}
