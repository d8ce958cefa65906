//! The client subcommands of the `registry` binary (query, register, unregister, watch) against
//! our registry server, each command in its own process.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use common::within;

use process::registry;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};

/// Runs a command to completion: (success, stdout, stderr).
async fn run(args: &[&str]) -> (bool, String, String) {
    let out = within(registry(args).output()).await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `registry register` and waits until it says it has registered.
async fn register(args: &[&str]) -> (Child, Lines<BufReader<ChildStderr>>) {
    let mut child = registry(args).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = within(err.next_line()).await.unwrap().unwrap_or_default();
    assert!(line.contains("registered"), "register said {line:?}");
    (child, err)
}

/// Starts `registry watch`, returning its stdout lines.
fn watch(args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = registry(args).stdout(Stdio::piped()).spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, out)
}

/// The next line `registry watch` prints, without the revision it starts with (our registry
/// has a change feed, so every line has one).
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    let line = within(lines.next_line())
        .await
        .unwrap()
        .expect("output ended");
    let (rev, rest) = line.split_once(' ').expect("a revision first");
    assert!(rev.parse::<u64>().is_ok(), "no revision in {line:?}");
    rest.to_string()
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("running").to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test]
async fn register_query_watch_and_interrupt() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let m = addr.as_str();
    let (mut watcher, mut seen) = watch(&["watch", "-m", m, "proto", "styx"]);
    let (mut reg, _err) = register(&[
        "register",
        "-m",
        m,
        "tcp!myhost!7001",
        "proto",
        "styx",
        "description",
        "it's a test",
    ])
    .await;

    let (ok, out, err) = run(&["query", "-m", m, "proto", "styx"]).await;
    assert!(ok, "{err}");
    // Listed in the order given, as after Inferno's grid/register.
    assert_eq!(
        out,
        "tcp!myhost!7001 proto styx description 'it''s a test'\n"
    );
    let (ok, out, _) = run(&["query", "-m", m, "-n", "description", "*"]).await;
    assert!(ok);
    assert_eq!(out, "tcp!myhost!7001\n");
    let (ok, out, _) = run(&["query", "-m", m, "proto", "http"]).await;
    assert!(ok);
    assert_eq!(out, "");

    // The watcher may have started before or after the registration: either way it reports it.
    assert_eq!(
        next_line(&mut seen).await,
        "+ tcp!myhost!7001 proto styx description 'it''s a test'"
    );

    // SIGTERM: register unregisters and exits 0; the watcher sees the service go.
    signal(&reg, "-TERM");
    let status = within(reg.wait()).await.unwrap();
    assert!(status.success(), "register exited {status}");
    assert_eq!(
        next_line(&mut seen).await,
        "- tcp!myhost!7001 proto styx description 'it''s a test'"
    );
    let (_, out, _) = run(&["query", "-m", m, "proto", "styx"]).await;
    assert_eq!(out, "");
    watcher.kill().await.unwrap();
}

/// `registry watch` reports nothing for an update that only reorders a service's pairs.
#[tokio::test]
async fn watch_ignores_reordered_pairs() {
    use registries::client::{Attributes, Registry};
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let m = addr.as_str();
    let reg = Registry::open(m).await.unwrap();
    let mut r = reg
        .register(
            "svc",
            &Attributes::new([("x", "1"), ("y", "2"), ("z", "3")]),
            false,
        )
        .await
        .unwrap();
    let (mut watcher, mut seen) = watch(&["watch", "-m", m]);
    assert_eq!(next_line(&mut seen).await, "+ svc z 3 y 2 x 1");
    r.update(&Attributes::new([("x", "1")])).await.unwrap();
    let (_, out, _) = run(&["query", "-m", m, "x", "1"]).await;
    assert_eq!(out, "svc y 2 z 3 x 1\n", "the registry reordered the pairs");
    let _marker = reg
        .register("marker", &Attributes::default(), false)
        .await
        .unwrap();
    assert_eq!(next_line(&mut seen).await, "+ marker");
    watcher.kill().await.unwrap();
}

#[tokio::test]
async fn killed_register_vanishes() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let m = addr.as_str();
    let (mut reg, _err) = register(&["register", "-m", m, "svc", "k", "v"]).await;
    let (mut watcher, mut seen) = watch(&["watch", "-m", m]);
    assert_eq!(next_line(&mut seen).await, "+ svc k v");
    reg.kill().await.unwrap();
    assert_eq!(next_line(&mut seen).await, "- svc k v");
    watcher.kill().await.unwrap();
}

#[tokio::test]
async fn persist_unregister_and_errors() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let m = addr.as_str();
    let (mut reg, _err) = register(&["register", "-m", m, "--persist", "kept", "a", "b"]).await;
    signal(&reg, "-INT");
    assert!(within(reg.wait()).await.unwrap().success());
    let (_, out, _) = run(&["query", "-m", m, "a", "b"]).await;
    assert_eq!(out, "kept persist 1 a b\n");

    // A duplicate name is the registry's diagnostic, and a failure.
    let (ok, _, err) = run(&["register", "-m", m, "kept"]).await;
    assert!(!ok);
    assert!(err.contains("duplicate service name"), "{err}");

    let (ok, _, err) = run(&["unregister", "-m", m, "kept"]).await;
    assert!(ok, "{err}");
    let (_, out, _) = run(&["query", "-m", m, "a", "b"]).await;
    assert_eq!(out, "");
    let (ok, _, _) = run(&["unregister", "-m", m, "kept"]).await;
    assert!(!ok);

    let (ok, _, err) = run(&["query", "-m", m, "odd"]).await;
    assert!(!ok);
    assert!(err.contains("odd attribute/value pairs"), "{err}");
    let (ok, _, err) = run(&["query", "-m", "tcp!127.0.0.1!1", "a", "b"]).await;
    assert!(!ok);
    assert!(err.contains("cannot dial"), "{err}");
}

#[tokio::test]
async fn query_reads_queries_from_stdin() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let m = addr.as_str();
    let (_reg, _err) = register(&["register", "-m", m, "svc", "proto", "styx"]).await;
    let mut q = registry(&["query", "-m", m])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = q.stdin.take().unwrap();
    stdin
        .write_all(b"proto styx\nproto http\n\n")
        .await
        .unwrap();
    drop(stdin);
    let out = within(q.wait_with_output()).await.unwrap();
    assert!(out.status.success());
    // No prompt off a terminal; the empty line lists everything.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "svc proto styx\nsvc proto styx\n"
    );
}

#[tokio::test]
async fn help_has_examples() {
    for cmd in ["query", "register", "unregister", "watch"] {
        let (ok, out, _) = run(&[cmd, "--help"]).await;
        assert!(ok);
        assert!(out.contains("Examples:"), "{cmd} --help:\n{out}");
        assert!(
            out.contains("-m, --registry <ADDR>"),
            "{cmd} --help:\n{out}"
        );
    }
}
