//! The manager's health checks: a service stays listed while it answers, is withdrawn while a
//! check is critical, and comes back when it recovers.

mod common;

use common::within;
use registries::client::{Attributes, Registry};
use registries::manager::{Check, CheckSpec, Connector, Manager, ServiceHandle};
use registries::registry::RunningServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const INTERVAL: Duration = Duration::from_millis(200);

async fn registry() -> (RunningServer, Manager, Registry) {
    let running = registries::Server::builder()
        .listen_str("tcp!127.0.0.1!0")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mgr = Manager::new(Connector::styx(running.addr().to_string()));
    let conn = registries::client::dial(&running.addr().to_string())
        .await
        .unwrap();
    let reader = Registry::connect_stream(conn, None).await.unwrap();
    (running, mgr, reader)
}

fn spec(text: &str) -> CheckSpec {
    CheckSpec {
        interval: INTERVAL,
        timeout: Duration::from_millis(500),
        ..CheckSpec::parse(text).unwrap()
    }
}

fn register(mgr: &Manager, name: &str, check: CheckSpec) -> ServiceHandle {
    mgr.register_checked(name, Attributes::new([("proto", "hc")]), vec![check])
}

/// Whether `name` is listed, as another client of the registry sees it.
async fn listed(reader: &Registry, name: &str) -> bool {
    let found = reader.find(&[("proto", "hc")]).await.unwrap();
    found.iter().any(|s| s.addr == name)
}

/// Waits until `name` is listed (or not), within `limit`; how long it took.
async fn until_listed(reader: &Registry, name: &str, want: bool, limit: Duration) -> Duration {
    let start = Instant::now();
    while listed(reader, name).await != want {
        assert!(
            start.elapsed() < limit,
            "{name} still {}listed after {limit:?}",
            if want { "not " } else { "" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// Waits a few intervals and checks that `name` is still listed (or still not).
async fn stays(reader: &Registry, name: &str, want: bool) {
    for _ in 0..8 {
        assert_eq!(listed(reader, name).await, want, "{name}");
        tokio::time::sleep(INTERVAL / 2).await;
    }
}

/// Accepts and drops connections on `listener` until aborted.
fn accept_all(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    })
}

const LIMIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn tcp_check_follows_the_listener() {
    let (_running, mgr, reader) = registry().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = accept_all(listener);
    let name = "tcp!127.0.0.1!1";
    let svc = register(&mgr, name, spec(&format!("127.0.0.1:{port}")));
    within(svc.wait_registered()).await.unwrap();
    assert!(listed(&reader, name).await);

    server.abort();
    let _ = server.await;
    // interval × fail_after + 1 s.
    let gone = until_listed(&reader, name, false, INTERVAL + Duration::from_secs(1)).await;
    assert!(!svc.is_registered(), "gone after {gone:?}");

    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let _server = accept_all(listener);
    until_listed(&reader, name, true, LIMIT).await;
    assert!(svc.is_registered());

    // A dial string works as well.
    let other = "tcp!127.0.0.1!2";
    let dialled = register(&mgr, other, spec(&format!("tcp!127.0.0.1!{port}")));
    within(dialled.wait_registered()).await.unwrap();
    assert!(listed(&reader, other).await);
}

#[tokio::test]
async fn http_check_follows_the_status() {
    let (_running, mgr, reader) = registry().await;
    let code = Arc::new(AtomicU16::new(200));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = code.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let code = answer.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                assert!(request.starts_with(b"GET /health HTTP/1.1\r\n"));
                let reply = format!(
                    "HTTP/1.1 {code} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    let name = "tcp!127.0.0.1!3";
    let svc = register(&mgr, name, spec(&format!("http://127.0.0.1:{port}/health")));
    within(svc.wait_registered()).await.unwrap();

    code.store(429, Ordering::SeqCst);
    stays(&reader, name, true).await;

    code.store(500, Ordering::SeqCst);
    until_listed(&reader, name, false, INTERVAL + Duration::from_secs(1)).await;
    assert!(!svc.is_registered());

    code.store(204, Ordering::SeqCst);
    until_listed(&reader, name, true, LIMIT).await;
    assert!(svc.is_registered());
}

#[tokio::test]
async fn exec_check_follows_the_exit_status() {
    let (_running, mgr, reader) = registry().await;
    let passing = register(&mgr, "tcp!x!1", spec("exec:true"));
    let warning = register(&mgr, "tcp!x!2", spec("exec:false"));
    let critical = register(&mgr, "tcp!x!3", spec("exec:sh -c 'exit 2'"));
    within(passing.wait_registered()).await.unwrap();
    within(warning.wait_registered()).await.unwrap();
    stays(&reader, "tcp!x!2", true).await;
    assert!(!critical.is_registered());
    assert!(!listed(&reader, "tcp!x!3").await);

    // One service through passing, critical and warning.
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    std::fs::write(&status, "0").unwrap();
    let command = format!("exec:sh -c 'exit $(cat {})'", status.display());
    let svc = register(&mgr, "tcp!x!4", spec(&command));
    within(svc.wait_registered()).await.unwrap();
    std::fs::write(&status, "2").unwrap();
    until_listed(&reader, "tcp!x!4", false, INTERVAL + Duration::from_secs(1)).await;
    std::fs::write(&status, "1").unwrap();
    until_listed(&reader, "tcp!x!4", true, LIMIT).await;
}

#[tokio::test]
async fn exec_check_is_killed_at_its_timeout() {
    let (_running, mgr, reader) = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let command = format!(
        "exec:sh -c 'echo $$ > {}; exec sleep 30'",
        pidfile.display()
    );
    let check = CheckSpec {
        interval: Duration::from_secs(2),
        timeout: Duration::from_millis(300),
        ..CheckSpec::parse(&command).unwrap()
    };
    assert!(matches!(check.check, Check::Exec { .. }));
    let started = Instant::now();
    let svc = register(&mgr, "tcp!x!5", check);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile)
            && let Ok(pid) = text.trim().parse::<i32>()
        {
            break pid;
        }
        assert!(started.elapsed() < LIMIT, "the check never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Killed and reaped (a zombie would still answer signal 0).
    loop {
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the timed-out check {pid} is still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(!svc.is_registered());
    assert!(!listed(&reader, "tcp!x!5").await);
}
