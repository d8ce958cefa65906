//! `registry serve --demo`: a registry with a few example services, and a banner telling a
//! newcomer what to try next.

use registries::net::Addr;
use registries::registry::Server;

/// The example services (attrdb(6) text), built into the binary.
pub const DEMO_DB: &str = include_str!("demo.ndb");

/// Loads the example services into `registry`; returns how many services it then holds.
pub fn load(registry: &Server) -> usize {
    for note in registry.load_static(DEMO_DB) {
        // Only a broken edit of demo.ndb gets here; say so rather than hide it.
        eprintln!("registry: demo.ndb: {note}");
    }
    registry.len()
}

/// What a client passes as `-m` to reach `addr`: nothing for the default registry address,
/// else the dial string (with a wildcard host made concrete).
fn m_flag(addr: &Addr) -> String {
    match addr {
        Addr::Tcp { host, port: 6675 }
            if matches!(host.as_str(), "127.0.0.1" | "0.0.0.0" | "localhost") =>
        {
            String::new()
        }
        Addr::Tcp { host, port } => {
            let host = match host.as_str() {
                "0.0.0.0" => "127.0.0.1",
                "::" => "::1",
                h => h,
            };
            let dial = format!("tcp!{host}!{port}");
            format!(" -m {}", crate::opts::shell_word(&dial))
        }
        Addr::Unix(_) => format!(" -m {}", crate::opts::shell_word(&addr.to_string())),
    }
}

/// The friendly banner for `addr` (the first listener); `auth` when clients need `-k`.
pub fn banner(addr: &Addr, services: usize, auth: bool) -> String {
    let mut m = m_flag(addr);
    if auth {
        m.push_str(" -k YOURKEY");
    }
    // `registry SUB [-m ADDR] [-k KEY] ARGS...`
    let cmd = |sub: &str, rest: &str| format!("registry {sub}{m} {rest}").trim_end().to_string();
    let lines = [
        (cmd("query", ""), "then press Enter: lists every service"),
        (cmd("query", "proto styx"), "the services with proto=styx"),
        (
            cmd("watch", ""),
            "shows services come and go; leave it running",
        ),
        (
            cmd("register", "'tcp!myhost!7001' proto styx"),
            "adds a service until you press ^C",
        ),
    ];
    let width = lines.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut out = format!(
        "registry: demo registry on {addr} with {services} example services.\n\
         In another terminal, try:\n"
    );
    for (c, what) in &lines {
        out.push_str(&format!("    {:width$}   {what}\n", c));
    }
    out.push_str("(In this source tree, `registry` is `cargo run --release --`.) Stop with ^C.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_db_loads_every_service() {
        let r = Server::new();
        assert_eq!(r.load_static(DEMO_DB), Vec::<String>::new());
        assert_eq!(load(&r), 4);
    }

    #[test]
    fn banner_names_the_address_unless_default() {
        let default = Addr::parse("tcp!127.0.0.1!6675", "").unwrap();
        assert!(banner(&default, 4, false).contains("registry query proto styx"));
        let other = Addr::parse("tcp!0.0.0.0!7000", "").unwrap();
        let b = banner(&other, 4, true);
        assert!(
            b.contains("registry watch -m 'tcp!127.0.0.1!7000' -k YOURKEY"),
            "{b}"
        );
    }
}
