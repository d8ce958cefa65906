//! `registry serve --demo`: a registry with a few example services, and a banner telling a
//! newcomer what to try next.

use registries::net::Addr;
use registries::registry::Server;
use std::path::Path;

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

/// Where the banner says `registry` is: nothing when `registry` on $PATH is this program; else
/// this program's path (relative to the current directory when under it: in a source tree after
/// `cargo run --release`, `target/release/registry`, as the README says) and how to install it.
pub fn how_to_run() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return String::new();
    };
    if on_path(&exe) {
        return String::new();
    }
    let shown = std::env::current_dir()
        .ok()
        .and_then(|d| exe.strip_prefix(d).ok().map(Path::to_path_buf))
        .unwrap_or(exe);
    format!(
        "(`registry` is {} here; `cargo install --path cli` puts it on your PATH.) ",
        crate::opts::shell_word(&shown.to_string_lossy())
    )
}

/// Whether the first `registry` on $PATH is the program `exe`.
fn on_path(exe: &Path) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    let first = std::env::split_paths(&path)
        .map(|d| d.join("registry"))
        .find(|p| p.is_file());
    match (
        first.and_then(|p| p.canonicalize().ok()),
        exe.canonicalize(),
    ) {
        (Some(found), Ok(exe)) => found == exe,
        _ => false,
    }
}

/// The friendly banner for `addr` (the first listener); `auth` when clients need `-k`;
/// `run_as` what [`how_to_run`] says.
pub fn banner(addr: &Addr, services: usize, auth: bool, run_as: &str) -> String {
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
    out.push_str(&format!("{run_as}Stop with ^C.\n"));
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
        assert!(banner(&default, 4, false, "").contains("registry query proto styx"));
        let other = Addr::parse("tcp!0.0.0.0!7000", "").unwrap();
        let b = banner(&other, 4, true, "");
        assert!(
            b.contains("registry watch -m 'tcp!127.0.0.1!7000' -k YOURKEY"),
            "{b}"
        );
    }

    #[test]
    fn demo_services_are_not_at_the_demos_own_ports() {
        let Ok(Addr::Tcp { port: styx, .. }) =
            Addr::parse(registries::registry::DEFAULT_LISTEN, "registry")
        else {
            panic!("the default listener is TCP");
        };
        let http: std::net::SocketAddr = crate::serve::DEMO_HTTP.parse().unwrap();
        let shim = registries::shim::ShimPorts::DEFAULT;
        let own = [styx, http.port(), shim.new, shim.find, shim.event];
        for name in DEMO_DB.lines().filter_map(|l| l.strip_prefix("service=")) {
            let port: u16 = name.rsplit('!').next().unwrap().parse().unwrap();
            assert!(
                !own.contains(&port),
                "{name}: the demo itself is at {own:?}"
            );
        }
    }
}
