//! `registry shim --registry ADDR -k KEYFILE -C ALG` in front of `registry serve --auth`: the
//! shim authenticates every upstream connection with infpk1, its registrations belong to the
//! key's user, and without `-k` it fails cleanly instead of serving or hanging.
//! Keys are made here with `registry key signer` and `registry key issue`.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use process::Running;

use registries::auth::AuthInfo;
use registries::client::Registry;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

/// Generous bound that only keeps a broken build from hanging the test run.
const HANG: Duration = Duration::from_secs(120);

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    common::within_for(HANG, f).await
}

fn registry_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry"));
    c.kill_on_drop(true).stdin(Stdio::null());
    c
}

/// Runs `registry ARGS` to completion, asserting success.
async fn ok(args: &[&str]) {
    let out = within(registry_cmd().args(args).output()).await.unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A signer and keys it issued for `server`, `alice` and `bob`, and `mallory`'s key from
/// another signer, in a temporary directory.
struct Keys {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Keys {
    async fn make() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let signer = path.join("signer");
        let s = signer.to_str().unwrap();
        ok(&["key", "signer", "-b", "512", "-f", s, "testsigner"]).await;
        for user in ["server", "alice", "bob"] {
            let f = path.join(user);
            ok(&["key", "issue", "-k", s, user, f.to_str().unwrap()]).await;
        }
        // mallory's key comes from another signer: the registry must refuse it.
        let other = path.join("othersigner");
        let o = other.to_str().unwrap();
        ok(&["key", "signer", "-b", "512", "-f", o, "othersigner"]).await;
        let f = path.join("mallory");
        ok(&["key", "issue", "-k", o, "mallory", f.to_str().unwrap()]).await;
        Keys { _dir: dir, path }
    }

    fn file(&self, user: &str) -> String {
        self.path.join(user).to_str().unwrap().to_string()
    }

    fn info(&self, user: &str) -> AuthInfo {
        AuthInfo::read(Path::new(&self.file(user))).unwrap()
    }
}

/// `registry serve --auth SERVERKEY --no-shim` on an ephemeral port, and its 9P address.
async fn serve_auth(keys: &Keys) -> (Running, String) {
    let server_key = keys.file("server");
    let (srv, line) = Running::start(
        &[
            "serve",
            "--auth",
            &server_key,
            "--no-shim",
            "--listen",
            "tcp!127.0.0.1!0",
        ],
        "registry: listening on ",
    )
    .await;
    let addr = line.split_whitespace().last().unwrap().to_string();
    (srv, addr)
}

/// The shim's three ports, from `registry: shim new tcp!H!P find tcp!H!P event tcp!H!P ...`.
struct Ports {
    new: u16,
    find: u16,
    event: u16,
}

/// `registry shim --registry ADDR EXTRA --ports 0,0,0`: the process, its ports and its line.
async fn shim(addr: &str, extra: &[&str]) -> (Running, Ports, String) {
    let mut args = vec!["shim", "--registry", addr, "--listen", "127.0.0.1"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--ports", "0,0,0"]);
    let (running, line) = Running::start(&args, "shim new").await;
    let port = |key: &str| -> u16 {
        let mut words = line.split_whitespace();
        words.find(|w| *w == key).expect(key);
        let addr = words.next().expect("address");
        addr.rsplit('!').next().unwrap().parse().unwrap()
    };
    let ports = Ports {
        new: port("new"),
        find: port("find"),
        event: port("event"),
    };
    (running, ports, line)
}

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).await.unwrap()
}

/// Sends a find query to the shim and returns the reply.
async fn find(port: u16, query: &str) -> String {
    let mut s = connect(port).await;
    s.write_all(query.as_bytes()).await.unwrap();
    let mut out = String::new();
    within(s.read_to_string(&mut out)).await.unwrap();
    out
}

/// Reads one line (empty at end of stream).
async fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    within(r.read_line(&mut line)).await.unwrap();
    line
}

#[tokio::test]
async fn shim_with_key_registers_as_the_keys_user() {
    let keys = Keys::make().await;
    let (_srv, addr) = serve_auth(&keys).await;
    let alice_key = keys.file("alice");
    let (_shim, ports, line) = shim(&addr, &["-k", &alice_key, "-C", "sha1/rc4_256"]).await;
    assert!(line.ends_with(" key alice"), "{line}");

    // The event port's READY means the shim has authenticated and opened `event`.
    let mut ev = BufReader::new(connect(ports.event).await);
    assert_eq!(read_line(&mut ev).await, "READY\n");
    let mut reg = connect(ports.new).await;
    reg.write_all(b"tcp!via!shim proto styx\n").await.unwrap();
    assert_eq!(read_line(&mut ev).await.len(), 9);
    assert_eq!(
        find(ports.find, "proto styx\n").await,
        "tcp!via!shim proto styx\n"
    );

    // Seen directly by another user, who may not remove it: it is not his.
    let bob = within(Registry::connect_with_key(&addr, &keys.info("bob"), "sha1"))
        .await
        .unwrap();
    let seen = bob.find(&[("proto", "styx")]).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].addr, "tcp!via!shim");
    let e = bob.unregister("tcp!via!shim").await.unwrap_err();
    assert_eq!(e.to_string(), "permission denied");

    // The key's user owns it, so alice may.
    let alice = within(Registry::connect_with_key(
        &addr,
        &keys.info("alice"),
        "none",
    ))
    .await
    .unwrap();
    alice.unregister("tcp!via!shim").await.unwrap();
    assert!(bob.find(&[("proto", "styx")]).await.unwrap().is_empty());
    drop(reg);
}

#[tokio::test]
async fn shim_without_key_fails_cleanly() {
    let keys = Keys::make().await;
    let (srv, addr) = serve_auth(&keys).await;
    let (shim, ports, _) = shim(&addr, &[]).await;

    // Every port closes instead of serving or hanging.
    assert_eq!(find(ports.find, "\n").await, "");
    let mut ev = BufReader::new(connect(ports.event).await);
    assert_eq!(read_line(&mut ev).await, "");
    let mut reg = connect(ports.new).await;
    reg.write_all(b"tcp!via!shim proto styx\n").await.unwrap();
    let mut rest = Vec::new();
    // A reset is as good as an end of stream here.
    let _ = within(reg.read_to_end(&mut rest)).await;
    assert!(rest.is_empty());

    // The shim says why; the server refused the unauthenticated connections and carries on.
    shim.wait_said("cannot connect to registry").await;
    shim.wait_said("needs a key").await;
    srv.wait_said("authentication failed").await;
    let bob = within(Registry::connect_with_key(&addr, &keys.info("bob"), "none"))
        .await
        .unwrap();
    assert!(bob.services().await.unwrap().is_empty());
}

#[tokio::test]
async fn key_options_are_checked() {
    let keys = Keys::make().await;
    let alice_key = keys.file("alice");
    let run = |args: Vec<&str>| {
        let mut c = registry_cmd();
        c.args(args);
        async move { within(c.output()).await.unwrap() }
    };
    // -C needs -k; -u and -k do not go together; a missing key file is an error, not a shim.
    let out = run(vec!["shim", "-C", "sha1", "--ports", "0,0,0"]).await;
    assert!(!out.status.success());
    let out = run(vec![
        "shim", "-k", &alice_key, "-u", "x", "--ports", "0,0,0",
    ])
    .await;
    assert!(!out.status.success());
    let missing = keys.file("nobody");
    let out = run(vec!["shim", "-k", &missing, "--ports", "0,0,0"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("can't read key file"), "{err}");
}

#[tokio::test]
async fn shim_with_a_refused_key_stops_at_once() {
    let keys = Keys::make().await;
    let (_srv, addr) = serve_auth(&keys).await;
    let mallory = keys.file("mallory");
    let args = [
        "shim",
        "--registry",
        &addr,
        "-k",
        &mallory,
        "--ports",
        "0,0,0",
    ];
    let out = within(registry_cmd().args(args).output()).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // Which of the two Inferno refusals comes depends on the random DH values (spec/infpk1.md).
    assert!(
        err.contains("pk doesn't match certificate") || err.contains("implausible parameter value"),
        "{err}"
    );
}
