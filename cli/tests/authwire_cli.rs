//! The `registry` command with authentication: `serve --auth`, the client subcommands' `-k`
//! and `-C`, `attach` to an infpk1 service, and `serve --demo`.
//! Keys: spec/vectors/keys/set1 for the registry, set2 (srvbob, alice) for the attached service.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use process::Running;

use registries::auth::AuthInfo;
use registries::client::{Attributes, Registry};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Generous bound that only keeps a broken build from hanging the test run.
const HANG: Duration = Duration::from_secs(60);
/// signer pkhash of spec/vectors/keys/set2 (mysigner).
const MYSIGNER: &str = "d9d058bfe434c7d659bb34d8f0c52f77458829af";

fn key(set: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spec/vectors/keys")
        .join(set)
        .join(name)
}

fn registry_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry"));
    c.kill_on_drop(true);
    c
}

/// A running `registry serve` and its 9P address.
struct Served {
    run: Running,
    addr: String,
}

impl Served {
    fn said(&self) -> String {
        self.run.said()
    }

    /// Waits until the server has said `needle` on stderr (its log lines may trail the
    /// client's exit).
    async fn wait_said(&self, needle: &str) {
        self.run.wait_said(needle).await
    }
}

/// Starts `registry serve ARGS --listen tcp!127.0.0.1!0` and waits for its address.
async fn serve(args: &[&str]) -> Served {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--listen", "tcp!127.0.0.1!0"]);
    let (run, line) = Running::start(&all, "registry: listening on ").await;
    let addr = line
        .strip_prefix("registry: listening on ")
        .expect("the address line")
        .to_string();
    Served { run, addr }
}

/// Runs `registry ARGS` to completion with `input` on stdin.
async fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = registry_cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    tokio::time::timeout(HANG, child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `registry query` until `name` shows up (a `register` child registers in the
/// background); gives up after [`HANG`].
async fn wait_listed(args: &[&str], name: &str) {
    tokio::time::timeout(HANG, async {
        loop {
            let out = run(args, b"").await;
            if text(&out.stdout).contains(name) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn serve_auth_with_client_keys() {
    let server_key = key("set1", "server.keyfile");
    let srv = serve(&["--auth", server_key.to_str().unwrap()]).await;
    let m = srv.addr.as_str();
    let alice = key("set1", "alice.keyfile");
    let bob = key("set1", "bob.keyfile");
    let mallory = key("set1", "mallory.keyfile");
    let (alice, bob, mallory) = (
        alice.to_str().unwrap(),
        bob.to_str().unwrap(),
        mallory.to_str().unwrap(),
    );

    // alice registers, holding the registration open.
    let mut reg = registry_cmd()
        .args(["register", "-m", m, "-k", alice, "-C", "sha1/rc4_256"])
        .args(["tcp!h!7", "proto", "styx", "description", "alice's 'files'"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let query = ["query", "-m", m, "-k", bob, "-C", "sha1", "proto", "styx"];
    wait_listed(&query, "tcp!h!7").await;
    let out = run(&query, b"").await;
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "tcp!h!7 proto styx description 'alice''s ''files'''\n"
    );

    // bob cannot remove it.
    let out = run(&["unregister", "-m", m, "-k", bob, "tcp!h!7"], b"").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        text(&out.stderr)
    );

    // No key, or a key from another signer: a clean failure, and the server carries on.
    let out = run(&["query", "-m", m, "proto", "styx"], b"").await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).starts_with("registry: "));
    let out = run(&["query", "-m", m, "-k", mallory, "proto", "styx"], b"").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot authenticate"),
        "{}",
        text(&out.stderr)
    );
    // -C without -k is a usage error.
    let out = run(&["query", "-m", m, "-C", "sha1", "proto", "styx"], b"").await;
    assert!(!out.status.success());

    // alice (with the default alg none) can remove her own service.
    let out = run(&["unregister", "-m", m, "-k", alice, "tcp!h!7"], b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&query, b"").await;
    assert_eq!(text(&out.stdout), "");
    srv.wait_said("authentication failed").await;
    srv.wait_said("no shim with --auth").await;
    reg.kill().await.unwrap();
}

#[tokio::test]
async fn serve_auth_alg_list() {
    let server_key = key("set1", "server.keyfile");
    let srv = serve(&["--auth", server_key.to_str().unwrap(), "--alg", "sha1"]).await;
    let alice = key("set1", "alice.keyfile");
    let alice = alice.to_str().unwrap();
    let ok = run(
        &["query", "-m", &srv.addr, "-k", alice, "-C", "sha1"],
        b"\n",
    )
    .await;
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let refused = run(&["query", "-m", &srv.addr, "-k", alice], b"\n").await;
    // `none` is not in the list: the server hangs up after the algorithm message.
    assert!(!refused.status.success());
    srv.wait_said("unsupported client algorithm: none").await;
}

/// An infpk1 echo server with the key `srvbob`: echoes each connection until it ends, and
/// reports who connected.
async fn echo_server() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let info = AuthInfo::read(&key("set2", "srvbob")).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (info, tx) = (info.clone(), tx.clone());
            tokio::spawn(async move {
                let algs = registries::auth::DEFAULT_SERVER_ALGS;
                let Ok((mut conn, user)) = registries::auth::server(stream, algs, &info).await
                else {
                    return;
                };
                let _ = tx.send(user);
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
                        break;
                    };
                    if conn.write_all(data).await.is_err() || conn.flush().await.is_err() {
                        break;
                    }
                }
                let _ = conn.shutdown().await;
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn attach_to_an_infpk1_service_through_an_auth_registry() {
    let server_key = key("set1", "server.keyfile");
    let srv = serve(&["--auth", server_key.to_str().unwrap()]).await;
    let (port, mut users) = echo_server().await;

    // The echo service, registered by alice (set1) in the authenticating registry.
    let alice1 = AuthInfo::read(&key("set1", "alice.keyfile")).unwrap();
    let reg = Registry::connect_with_key(&srv.addr, &alice1, "none")
        .await
        .unwrap();
    let attrs = Attributes::new([
        ("proto", "echo"),
        ("auth", "infpk1"),
        ("auth.signer", MYSIGNER),
        ("auth.crypt", "sha1/rc4_256"),
    ]);
    let _held = reg
        .register(&format!("tcp!127.0.0.1!{port}"), &attrs, false)
        .await
        .unwrap();

    // A key directory with set2's alice, and one key from another signer that must be passed over.
    let keydir = tempfile::tempdir().unwrap();
    std::fs::copy(key("set2", "mallory"), keydir.path().join("mallory")).unwrap();
    std::fs::copy(key("set2", "alice"), keydir.path().join("alice")).unwrap();

    let alice1_path = key("set1", "alice.keyfile");
    let mut child = registry_cmd()
        .args([
            "attach",
            "-m",
            &srv.addr,
            "-k",
            alice1_path.to_str().unwrap(),
        ])
        .arg("--keydir")
        .arg(keydir.path())
        .args(["proto", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let msg = b"hello, \x00binary\xff world\n";
    stdin.write_all(msg).await.unwrap();
    stdin.flush().await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(HANG, stdout.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, msg);
    assert_eq!(users.recv().await.as_deref(), Some("alice"));
    // End of input: the service sees end of file, closes, and attach exits.
    drop(stdin);
    let status = tokio::time::timeout(HANG, child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("as alice (peer srvbob)"), "{err}");
}

#[tokio::test]
async fn attach_without_a_matching_key_fails() {
    let srv = serve(&["--no-shim"]).await;
    let (port, _users) = echo_server().await;
    let reg = Registry::open(&srv.addr).await.unwrap();
    let attrs = Attributes::new([
        ("proto", "echo"),
        ("auth", "infpk1"),
        ("auth.signer", MYSIGNER),
    ]);
    let _held = reg
        .register(&format!("tcp!127.0.0.1!{port}"), &attrs, false)
        .await
        .unwrap();
    let keydir = tempfile::tempdir().unwrap();
    std::fs::copy(key("set2", "mallory"), keydir.path().join("mallory")).unwrap();
    let dir = keydir.path().to_str().unwrap();
    let out = run(
        &["attach", "-m", &srv.addr, "--keydir", dir, "proto", "echo"],
        b"",
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no matching keys found"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["attach", "-m", &srv.addr, "proto", "nothing"], b"").await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no matching service"));
}

#[tokio::test]
async fn serve_demo_lists_its_services() {
    let srv = serve(&["--demo", "--no-shim"]).await;
    // The banner follows the address; wait for its last line.
    srv.wait_said("Stop with ^C").await;
    // --demo serves HTTP too (127.0.0.1:6680, or another port when that one is taken).
    srv.wait_said("to see the catalog live").await;
    let said = srv.said();
    let page = said
        .lines()
        .find_map(|l| l.strip_prefix("Open "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the page's URL")
        .to_string();
    assert!(page.starts_with("http://127.0.0.1:"), "{said}");
    assert!(
        // Quoted, so that it can be pasted into bash (`!` is history expansion there).
        said.contains(&format!("registry query -m '{}'", srv.addr)),
        "{said}"
    );
    assert!(said.contains("registry register"), "{said}");
    let out = run(&["query", "-m", &srv.addr], b"\n").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert!(
        listed.contains("tcp!localhost!6666 description 'the demo host''s files' proto styx\n")
    );
    let out = run(&["query", "-m", &srv.addr, "-n", "auth", "infpk1"], b"").await;
    assert_eq!(text(&out.stdout), "tcp!localhost!6667\n");
}
