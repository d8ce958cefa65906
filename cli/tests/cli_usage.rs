//! The command line as people use it: strict flags, timeouts, the address forms, JSON for
//! scripts, a watch that survives a registry restart, completions and the manual, and clear
//! errors. Each command runs in its own process.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use common::within;
use process::registry;
use process::serve;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

async fn run(args: &[&str]) -> Output {
    within(registry(args).output()).await.unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A registry on a free port with one service, `tcp!a!1 proto styx`, held by a registration
/// made through the library (kept alive by the returned values).
async fn with_one_service() -> (
    registries::RunningServer,
    registries::Registry,
    registries::Registered,
    String,
) {
    let server = common::registry::start().await;
    let addr = server.local_addrs()[0].to_string();
    let (reg, held) = register_at(&addr, "tcp!a!1", &[("proto", "styx")]).await;
    (server, reg, held, addr)
}

/// Registers `name` with `pairs` at the registry `addr` through the library.
async fn register_at(
    addr: &str,
    name: &str,
    pairs: &[(&str, &str)],
) -> (registries::Registry, registries::Registered) {
    let reg = registries::Registry::open(addr).await.unwrap();
    let attrs = registries::Attributes::new(pairs.iter().copied());
    let held = reg.register(name, &attrs, false).await.unwrap();
    (reg, held)
}

#[tokio::test]
async fn unknown_flags_are_usage_errors_wherever_they_stand() {
    for args in [
        &["query", "-m", "tcp!127.0.0.1!1", "--bogus", "x"][..],
        &["query", "proto", "styx", "--bogus"],
        &["watch", "-m", "tcp!127.0.0.1!1", "--bogus", "x"],
        &["register", "tcp!a!1", "proto", "styx", "--bogus"],
        &["unregister", "--bogus", "tcp!a!1"],
    ] {
        let out = run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("--bogus") && err.contains("Usage:"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn flags_after_the_words_count_and_dashed_values_go_after_double_dash() {
    let (_server, _reg, _held, addr) = with_one_service().await;
    let out = run(&["query", "proto", "styx", "-m", &addr]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "tcp!a!1 proto styx\n");

    // A value that begins with `-` is a word after `--`.
    let out = run(&["query", "-m", &addr, "--", "proto", "-x"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
}

#[tokio::test]
async fn a_silent_server_times_out_with_status_3() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            conns.push(s);
        }
    });
    let m = format!("127.0.0.1:{port}");
    for args in [
        &["query", "-m", &m, "--timeout", "0.5", "proto", "styx"][..],
        &["unregister", "-m", &m, "--timeout", "0.5", "tcp!a!1"],
        &["watch", "-m", &m, "--timeout", "0.5"],
        &["register", "-m", &m, "--timeout", "0.5", "tcp!a!1"],
    ] {
        let started = Instant::now();
        let out = run(args).await;
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("no answer within 0.5 s"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    }
}

#[tokio::test]
async fn host_port_and_the_registry_variable_name_a_registry() {
    let (_server, _reg, _held, addr) = with_one_service().await;
    let port = addr.rsplit('!').next().unwrap();
    let out = run(&["query", "-m", &format!("127.0.0.1:{port}"), "proto", "styx"]).await;
    assert_eq!(
        text(&out.stdout),
        "tcp!a!1 proto styx\n",
        "{}",
        text(&out.stderr)
    );

    for value in [
        addr.clone(),
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1!{port}"),
    ] {
        let out = within(
            registry(&["query", "proto", "styx"])
                .env("registry", &value)
                .output(),
        )
        .await
        .unwrap();
        assert_eq!(
            text(&out.stdout),
            "tcp!a!1 proto styx\n",
            "registry={value}: {}",
            text(&out.stderr)
        );
    }

    // Failover: the first -m does not answer, the second does.
    let out = run(&[
        "query",
        "-m",
        "tcp!127.0.0.1!1",
        "-m",
        &addr,
        "proto",
        "styx",
    ])
    .await;
    assert_eq!(
        text(&out.stdout),
        "tcp!a!1 proto styx\n",
        "{}",
        text(&out.stderr)
    );

    let out = run(&["query", "-m", "tcp!h", "proto", "styx"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("bad dial string: 'tcp!h'")
            && text(&out.stderr).contains("use tcp!host!port or host:port"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn json_output_parses_back() {
    let (_server, reg, _held, addr) = with_one_service().await;
    let out = run(&["query", "-m", &addr, "--json", "--all"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"name": "tcp!a!1", "attrs": [["proto", "styx"]],
                            "owner": "none", "persist": false}])
    );

    let (mut watcher, mut lines) = watch(&["watch", "-m", &addr, "--json", "proto", "styx"]);
    let mut first: serde_json::Value = serde_json::from_str(&next(&mut lines).await).unwrap();
    let rev = first["rev"].as_u64().expect("a revision");
    first.as_object_mut().unwrap().remove("rev");
    assert_eq!(
        first,
        serde_json::json!({"change": "added", "name": "tcp!a!1", "attrs": [["proto", "styx"]],
                           "persist": false})
    );
    let b = reg
        .register(
            "tcp!b!2",
            &registries::Attributes::new([("proto", "styx"), ("text", "it's \"quoted\"")]),
            false,
        )
        .await
        .unwrap();
    let second: serde_json::Value = serde_json::from_str(&next(&mut lines).await).unwrap();
    assert!(second["rev"].as_u64().unwrap() > rev);
    assert_eq!(second["change"], "added");
    assert_eq!(second["name"], "tcp!b!2");
    // In the service's order: the registry puts each new attribute first, as Inferno's does.
    assert_eq!(
        second["attrs"],
        serde_json::json!([["text", "it's \"quoted\""], ["proto", "styx"]])
    );
    b.close().await.unwrap();
    let third: serde_json::Value = serde_json::from_str(&next(&mut lines).await).unwrap();
    assert_eq!(third["change"], "removed");
    watcher.kill().await.unwrap();
}

fn watch(args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = registry(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, out)
}

async fn next(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    common::within_for(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap()
        .expect("watch's output ended")
}

/// A watch line without the revision it starts with.
fn without_rev(line: &str) -> String {
    let (rev, rest) = line.split_once(' ').expect("a revision first");
    assert!(rev.parse::<u64>().is_ok(), "no revision in {line:?}");
    rest.to_string()
}

#[tokio::test]
async fn watch_reports_what_changed_while_the_registry_was_away() {
    let (mut server, port) = serve("tcp!127.0.0.1!0").await.expect("server started");
    let m = format!("tcp!127.0.0.1!{port}");
    // The registry restarts empty, so what the watcher saw before is removed, and what the new
    // registry holds is added.
    let (_old, _held) = register_at(&m, "tcp!old!1", &[("k", "v")]).await;
    let (mut watcher, mut lines) = watch(&["watch", "-m", &m, "k", "v"]);
    assert_eq!(without_rev(&next(&mut lines).await), "+ tcp!old!1 k v");

    server.kill().await.unwrap();
    let (_server, _) = common::within_for(Duration::from_secs(60), async {
        loop {
            if let Some(s) = serve(&m).await {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let reg = registries::Registry::open(&m).await.unwrap();
    let _new = reg
        .register(
            "tcp!new!2",
            &registries::Attributes::new([("k", "v")]),
            false,
        )
        .await
        .unwrap();
    // The registry restarted, so the revision cannot be resumed: the watcher reports the
    // difference between what it saw and the registry now.
    let mut got = vec![
        without_rev(&next(&mut lines).await),
        without_rev(&next(&mut lines).await),
    ];
    got.sort();
    assert_eq!(got, ["+ tcp!new!2 k v", "- tcp!old!1 k v"]);
    watcher.kill().await.unwrap();
}

#[tokio::test]
async fn completions_for_each_shell_and_the_manual() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]).await;
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(
            script.contains("registry") && script.contains("query"),
            "{shell}"
        );
    }
    let out = run(&["man"]).await;
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(".TH registry"));
}

#[tokio::test]
async fn key_signer_does_not_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signer.key");
    let f = file.to_str().unwrap();
    let args = ["key", "signer", "-b", "256", "-f", f, "s1"];
    assert!(run(&args).await.status.success());
    let before = std::fs::read(&file).unwrap();
    let out = run(&args).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let mut forced = args.to_vec();
    forced.insert(2, "--force");
    assert!(run(&forced).await.status.success());
    assert_ne!(std::fs::read(&file).unwrap(), before);
}

#[tokio::test]
async fn errors_say_what_to_do() {
    let (_server, _reg, _held, addr) = with_one_service().await;
    let out = run(&["unregister", "-m", &addr, "tcp!missing!1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no service named tcp!missing!1"),
        "{}",
        text(&out.stderr)
    );

    let key = common::root().join("spec/vectors/keys/set1/alice.keyfile");
    let out = run(&[
        "query",
        "-m",
        &addr,
        "-k",
        key.to_str().unwrap(),
        "proto",
        "styx",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is it running with --auth?"),
        "{}",
        text(&out.stderr)
    );

    let server_key = common::root().join("spec/vectors/keys/set1/server.keyfile");
    let (_auth, line) = process::Running::start(
        &[
            "serve",
            "--listen",
            "tcp!127.0.0.1!0",
            "--no-shim",
            "--auth",
            server_key.to_str().unwrap(),
        ],
        "listening on",
    )
    .await;
    let port = process::Running::port_of(&line);
    let out = run(&["query", "-m", &format!("127.0.0.1:{port}"), "proto", "styx"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("this registry requires authentication: use -k KEYFILE"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn an_invalid_log_filter_is_reported() {
    let out = within(
        registry(&["query", "--help"])
            .env("REGISTRY_LOG", "no=such=filter")
            .output(),
    )
    .await
    .unwrap();
    assert!(
        text(&out.stderr).contains("REGISTRY_LOG"),
        "{}",
        text(&out.stderr)
    );
}

/// A TCP relay to `target` whose connections can all be cut at once, the listener staying.
struct Cuttable {
    port: u16,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Cuttable {
    async fn start(target: u16) -> Cuttable {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (cut, rx) = tokio::sync::watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                let mut rx = rx.clone();
                // Only a cut from now on ends this connection.
                rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.changed() => {}
                    }
                });
            }
        });
        Cuttable { port, cut }
    }

    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test]
async fn watch_resumes_from_its_revision_after_a_lost_connection() {
    let server = common::registry::start().await;
    let addr = server.local_addrs()[0].to_string();
    let port: u16 = addr.rsplit('!').next().unwrap().parse().unwrap();
    let relay = Cuttable::start(port).await;
    let m = format!("127.0.0.1:{}", relay.port);
    let (mut watcher, mut lines) = watch(&["watch", "-m", &m, "k", "v"]);
    let reg = registries::Registry::open(&addr).await.unwrap();
    let a = reg
        .register("tcp!a!1", &registries::Attributes::new([("k", "v")]), false)
        .await
        .unwrap();
    let first = next(&mut lines).await;
    assert_eq!(without_rev(&first), "+ tcp!a!1 k v");
    let rev: u64 = first.split(' ').next().unwrap().parse().unwrap();

    // The watcher's connection goes; the registry does not. What happens meanwhile, including a
    // service that comes and goes, is delivered once it is back, each change once, in order.
    relay.cut();
    let b = reg
        .register("tcp!b!1", &registries::Attributes::new([("k", "v")]), false)
        .await
        .unwrap();
    b.close().await.unwrap();
    a.close().await.unwrap();
    let got = [
        next(&mut lines).await,
        next(&mut lines).await,
        next(&mut lines).await,
    ];
    assert_eq!(
        got,
        [
            format!("{} + tcp!b!1 k v", rev + 1),
            format!("{} - tcp!b!1 k v", rev + 2),
            format!("{} - tcp!a!1 k v", rev + 3),
        ]
    );
    watcher.kill().await.unwrap();
}

#[tokio::test]
async fn watch_from_a_revision_and_its_refusals() {
    let (_server, reg, held, addr) = with_one_service().await;
    let out = run(&["query", "-m", &addr, "proto", "styx"]).await;
    assert!(out.status.success());
    drop(held);
    let mut changes = reg.changes(&[("proto", "styx")], None).await.unwrap();
    let again = reg
        .register(
            "tcp!a!1",
            &registries::Attributes::new([("proto", "styx")]),
            false,
        )
        .await
        .unwrap();
    use futures_util::StreamExt;
    let ev = within(changes.next()).await.unwrap().unwrap();
    // From the revision before: the removal (of the first registration) and the new one.
    let from = (ev.revision - 1).to_string();
    let (mut watcher, mut lines) = watch(&["watch", "-m", &addr, "--from", &from, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&next(&mut lines).await).unwrap();
    assert_eq!(v["change"], "removed");
    assert_eq!(v["rev"].as_u64(), Some(ev.revision - 1));
    let v: serde_json::Value = serde_json::from_str(&next(&mut lines).await).unwrap();
    assert_eq!(v["change"], "added");
    assert_eq!(v["rev"].as_u64(), Some(ev.revision));
    watcher.kill().await.unwrap();
    drop(again);

    let out = run(&["watch", "-m", &addr, "--from", "5"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("revision 5 is older than anything this registry keeps"),
        "{}",
        text(&out.stderr)
    );

    let plain = common::registry::start_server(registries::Server::new().without_feed()).await;
    let paddr = plain.local_addrs()[0].to_string();
    let out = run(&["watch", "-m", &paddr, "--from", "5"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no change feed"),
        "{}",
        text(&out.stderr)
    );
}
