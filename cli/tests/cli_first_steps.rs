//! What a new user met in a first session, each held by a test: an empty standard input, the
//! `--persist` message, revisions a user can copy, usage errors that exit 2, an HTTP port given
//! for a 9P one, and registering without `$USER`.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use common::within;
use process::registry;
use std::process::{Output, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `registry ARGS` with standard input empty (not a terminal), to the end.
async fn run(args: &[&str]) -> Output {
    within(registry(args).stdin(Stdio::null()).output())
        .await
        .unwrap()
}

#[tokio::test]
async fn query_with_an_empty_standard_input_lists_every_service() {
    let server = common::registry::start().await;
    let addr = server.addr().to_string();
    let out = run(&["query", "-m", &addr, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[]\n");
    let reg = registries::Registry::open(&addr).await.unwrap();
    let _held = reg
        .register("tcp!a!1", &registries::Attributes::new([("k", "v")]), false)
        .await
        .unwrap();
    let out = run(&["query", "-m", &addr]).await;
    assert_eq!(text(&out.stdout), "tcp!a!1 k v\n");
}

#[tokio::test]
async fn odd_pairs_are_usage_errors() {
    for args in [
        &["query", "-m", "tcp!127.0.0.1!1", "proto"][..],
        &["watch", "-m", "tcp!127.0.0.1!1", "proto"],
        &["register", "-m", "tcp!127.0.0.1!1", "tcp!a!1", "proto"],
    ] {
        let out = run(args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("odd attribute/value pairs"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// Starts `registry ARGS` and returns it with its first `n` lines on standard error.
async fn first_said(
    args: &[&str],
    envs: &[(&str, Option<&str>)],
    n: usize,
) -> (tokio::process::Child, String) {
    let mut cmd = registry(args);
    for (k, v) in envs {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    for _ in 0..n {
        said.push(within(lines.next_line()).await.unwrap().unwrap());
    }
    let line = said.join("\n");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, line)
}

#[tokio::test]
async fn a_persistent_registration_says_it_stays() {
    let server = common::registry::start().await;
    let addr = server.addr().to_string();
    let (_child, line) = first_said(
        &["register", "-m", &addr, "--persist", "tcp!p!1", "k", "v"],
        &[("USER", Some("alice"))],
        1,
    )
    .await;
    assert!(line.contains("stays after this command ends"), "{line}");
    assert!(!line.contains("interrupt to unregister"), "{line}");
}

#[tokio::test]
async fn registering_without_user_warns_that_anyone_without_it_may_unregister() {
    let server = common::registry::start().await;
    let addr = server.addr().to_string();
    let (_child, line) = first_said(
        &["register", "-m", &addr, "tcp!n!1", "k", "v"],
        &[("USER", None)],
        2,
    )
    .await;
    assert!(line.contains("$USER is not set"), "{line}");
}

#[tokio::test]
async fn watch_says_the_revision_it_starts_from_and_plainly_refuses_one_never_issued() {
    let server = common::registry::start().await;
    let addr = server.addr().to_string();
    let (_child, line) = first_said(&["watch", "-m", &addr], &[], 1).await;
    let rev: u64 = line
        .strip_prefix("registry: watching from revision ")
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(rev > 1_000_000, "{rev}");
    let out = run(&["watch", "-m", &addr, "--from", "41"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("revision 41 is older than anything this registry keeps"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn an_http_port_given_for_a_registry_is_named() {
    // What any HTTP server answers a 9P Tversion with.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let out = run(&["query", "-m", &format!("127.0.0.1:{port}"), "k", "v"]).await;
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(
        said.contains("this is an HTTP server, not a 9P registry"),
        "{said}"
    );
    assert!(!said.contains("-k KEYFILE"), "{said}");
}

/// The names listed at `addr`.
async fn names(addr: &str) -> String {
    text(&run(&["query", "-m", addr, "-n", "--all"]).await.stdout)
}

/// Waits (30 s at most) until `addr` lists exactly `want`.
async fn until_listed(addr: &str, want: &str) {
    within(async {
        while names(addr).await != want {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn register_with_a_check_is_listed_only_while_the_check_passes() {
    let server = common::registry::start().await;
    let addr = server.addr().to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let check = format!("127.0.0.1:{port}");
    let mut child = registry(&[
        "register",
        "-m",
        &addr,
        "--check",
        &check,
        "--interval",
        "0.2",
        "--check-timeout",
        "1",
        "tcp!checked!1",
        "k",
        "v",
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    until_listed(&addr, "tcp!checked!1\n").await;
    // The service stops answering: it is withdrawn, and readers see it go.
    drop(listener);
    until_listed(&addr, "").await;
    // It answers again: registered again, with the same attributes.
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    until_listed(&addr, "tcp!checked!1\n").await;
    let out = run(&["query", "-m", &addr, "k", "v"]).await;
    assert_eq!(text(&out.stdout), "tcp!checked!1 k v\n");
    child.kill().await.unwrap();
}
