//! Key files stay private and say so when they are not; `key show` shows no secret; the
//! algorithm policy of `serve --auth` is in its help and each connection's choice is logged.

mod process;

use process::Running;
use registries::auth::{AuthInfo, DEFAULT_SERVER_ALGS};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn registry(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry"));
    c.args(args).stdin(Stdio::null()).env_remove("registry");
    c
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A signer and a server and a user key it issued, in `dir`.
fn keys(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let signer = dir.join("signer");
    let s = signer.to_str().unwrap();
    ok(
        registry(&["key", "signer", "-b", "512", "-f", s, "testsigner"])
            .output()
            .unwrap(),
        "signer",
    );
    let server = dir.join("server");
    ok(
        registry(&["key", "issue", "-k", s, "server", server.to_str().unwrap()])
            .output()
            .unwrap(),
        "issue",
    );
    let alice = dir.join("alice");
    ok(
        registry(&["key", "issue", "-k", s, "alice", alice.to_str().unwrap()])
            .output()
            .unwrap(),
        "issue",
    );
    (signer, server, alice)
}

fn expose(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn key_files_are_written_private() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, _, alice) = keys(dir.path());
    assert_eq!(mode(&signer), 0o600);
    assert_eq!(mode(&alice), 0o600);

    // Overwriting a signer file that had been made readable makes it private again.
    expose(&signer);
    let s = signer.to_str().unwrap();
    ok(
        registry(&["key", "signer", "-b", "512", "--force", "-f", s, "again"])
            .output()
            .unwrap(),
        "signer --force",
    );
    assert_eq!(mode(&signer), 0o600);

    // `key issue > FILE`: the shell made FILE with its umask; the command makes it private.
    let out_path = dir.path().join("bob");
    let out_file = std::fs::File::create(&out_path).unwrap();
    out_file
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .unwrap();
    let out = ok(
        registry(&["key", "issue", "-k", s, "bob"])
            .stdout(out_file)
            .output()
            .unwrap(),
        "issue > file",
    );
    assert_eq!(mode(&out_path), 0o600);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("made it private"), "{said}");
    assert_eq!(AuthInfo::read(&out_path).unwrap().mypk.owner, "bob");
}

#[test]
fn show_warns_once_about_a_readable_key_and_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, alice) = keys(dir.path());
    let a = alice.to_str().unwrap();

    let out = ok(registry(&["key", "show", a]).output().unwrap(), "show");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    expose(&alice);
    let out = ok(registry(&["key", "show", a, a]).output().unwrap(), "show");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.matches("is accessible by others").count(), 1, "{said}");
    assert!(said.contains(&format!("key file {a} ")), "{said}");
    assert!(said.contains("mode 0644"), "{said}");

    // The secret key's own numbers (the fields not also in the public key) are nowhere in
    // what `show` printed.
    let shown = String::from_utf8_lossy(&out.stdout);
    let info = AuthInfo::read(&alice).unwrap();
    let public = info.mypk.to_text();
    let secret = info.mysk.to_text();
    let private: Vec<&str> = secret.lines().filter(|f| !public.contains(f)).collect();
    assert!(private.len() >= 3, "{secret}");
    for field in private {
        assert!(!shown.contains(field), "`key show` printed {field:?}");
    }
}

#[tokio::test]
async fn serve_shim_and_clients_warn_and_the_chosen_algorithm_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (_, server, alice) = keys(dir.path());
    expose(&server);
    expose(&alice);
    let server = server.to_str().unwrap();
    let alice = alice.to_str().unwrap();
    let args = [
        "serve",
        "--auth",
        server,
        "--no-shim",
        "--listen",
        "tcp!127.0.0.1!0",
    ];
    let (srv, line) = Running::start_with(
        None,
        &[("REGISTRY_LOG", "info")],
        &args,
        "registry: listening on ",
    )
    .await;
    assert!(
        srv.said()
            .contains(&format!("key file {server} is accessible by others")),
        "{}",
        srv.said()
    );
    let addr = line.split_whitespace().last().unwrap().to_string();

    let out = registry(&["query", "-m", &addr, "-k", alice, "-C", "sha1/rc4_256"])
        .output()
        .unwrap();
    let out = ok(out, "query -k");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("key file {alice} is accessible by others")),
        "{said}"
    );
    srv.wait_said("authenticated as alice, algorithm sha1 rc4_256")
        .await;

    let (shim, _) = Running::start(
        &[
            "shim",
            "--registry",
            &addr,
            "-k",
            alice,
            "--listen",
            "127.0.0.1",
            "--ports",
            "0,0,0",
        ],
        "shim new",
    )
    .await;
    assert!(
        shim.said()
            .contains(&format!("key file {alice} is accessible by others")),
        "{}",
        shim.said()
    );
}

#[test]
fn serve_help_lists_the_default_algorithms_and_the_weak_ones() {
    let out = ok(registry(&["serve", "--help"]).output().unwrap(), "help");
    let help = String::from_utf8_lossy(&out.stdout);
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let listed = DEFAULT_SERVER_ALGS.join(" ");
    assert!(flat.contains(&listed), "{listed} not in\n{help}");
    assert!(flat.contains("Weak among them"), "{help}");
}
