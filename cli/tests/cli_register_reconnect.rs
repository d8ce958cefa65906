//! `registry register` keeps its service registered across a restart of `registry serve`, says
//! so on standard error, and still unregisters on SIGTERM.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use process::registry;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStderr;

/// Generous bound: a registration comes back only after the registry restarts.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    common::within_for(Duration::from_secs(60), f).await
}

use process::serve;

/// The next line `registry register` writes on standard error, past the warning it gives when
/// `$USER` is not set.
async fn next_line(err: &mut Lines<BufReader<ChildStderr>>) -> String {
    loop {
        let line = within(err.next_line())
            .await
            .unwrap()
            .expect("register's stderr ended");
        if !line.contains("$USER is not set") {
            return line;
        }
    }
}

/// `registry query -m ADDR -n NAME '*'` as it answers now: the names found.
async fn names(m: &str, attr: &str) -> String {
    let out = within(registry(&["query", "-m", m, "-n", attr, "*"]).output())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "query: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn register_survives_a_registry_restart() {
    let (mut server, port) = serve("tcp!127.0.0.1!0").await.expect("server started");
    let m = format!("tcp!127.0.0.1!{port}");
    let mut reg = registry(&["register", "-m", &m, "tcp!kept!7001", "role", "kept"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(reg.stderr.take().unwrap()).lines();
    let line = next_line(&mut err).await;
    assert!(line.contains("registered tcp!kept!7001"), "{line}");
    assert_eq!(names(&m, "role").await, "tcp!kept!7001\n");

    // The registry goes away: register notices and says so.
    server.kill().await.unwrap();
    let line = next_line(&mut err).await;
    assert!(
        line.starts_with("registry: lost registry: ") && line.ends_with("; re-registering"),
        "{line}"
    );

    // It comes back on the same port (retrying while the port is not free again).
    let (_server, _) = within(async {
        loop {
            if let Some(s) = serve(&m).await {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let line = next_line(&mut err).await;
    assert_eq!(line, "registry: registered tcp!kept!7001 again");
    assert_eq!(names(&m, "role").await, "tcp!kept!7001\n");

    // SIGTERM: unregisters and exits 0.
    let pid = reg.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = within(reg.wait()).await.unwrap();
    assert!(status.success(), "register exited {status}");
    assert_eq!(names(&m, "role").await, "");
}

#[tokio::test]
async fn first_refusal_still_fails() {
    let (_server, port) = serve("tcp!127.0.0.1!0").await.expect("server started");
    let m = format!("tcp!127.0.0.1!{port}");
    let mut first = registry(&["register", "-m", &m, "taken", "a", "b"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(first.stderr.take().unwrap()).lines();
    assert!(next_line(&mut err).await.contains("registered taken"));
    let out = within(registry(&["register", "-m", &m, "taken", "c", "d"]).output())
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("duplicate service name"), "{err}");
    first.kill().await.unwrap();
}
