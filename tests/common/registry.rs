//! Starting our registry(4) server for a test, always on loopback.

use registries::registry::{RunningServer, Server};

/// Starts a registry server listening on `addr`, a dial string such as `tcp!127.0.0.1!0`.
pub async fn start_at(addr: &str) -> RunningServer {
    Server::builder()
        .listen_str(addr)
        .expect("a valid dial string")
        .start()
        .await
        .expect("the registry starts")
}

/// Serves `server` on a free loopback port.
pub async fn start_server(server: Server) -> RunningServer {
    Server::builder()
        .listen_str("tcp!127.0.0.1!0")
        .expect("a valid dial string")
        .server(server)
        .start()
        .await
        .expect("the registry starts")
}

/// Starts a registry server on a free loopback port.
pub async fn start() -> RunningServer {
    start_at("tcp!127.0.0.1!0").await
}

/// Starts a registry server on `addr` that runs until the test ends; returns the dial string it
/// is bound to.
pub async fn spawn_at(addr: &str) -> String {
    let running = start_at(addr).await;
    let bound = running.local_addrs()[0].to_string();
    tokio::spawn(running.wait());
    bound
}

/// Starts a registry server on loopback `port` again after a restart, retrying while the system
/// has not yet released the port (up to [`super::LIMIT`]).
pub async fn restart_on(port: u16) -> RunningServer {
    let addr = format!("tcp!127.0.0.1!{port}");
    let deadline = tokio::time::Instant::now() + super::LIMIT;
    loop {
        match Server::builder()
            .listen_str(&addr)
            .expect("a valid dial string")
            .start()
            .await
        {
            Ok(s) => return s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("rebind {port}: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot listen again on {port}: {e}"),
        }
    }
}

/// Registers `n` services on one connection to the registry at `addr`, drops them all at once
/// (as many Tclunks together) and waits, for at most `limit`, until another connection lists
/// none of them. Returns the connection that dropped them.
pub async fn drop_many_at_once(
    addr: &str,
    n: usize,
    limit: std::time::Duration,
) -> registries::Registry {
    let reg = registries::Registry::open(addr).await.unwrap();
    let watcher = registries::Registry::open(addr).await.unwrap();
    let attrs = registries::Attributes::new([("k", "v")]);
    let mut held = Vec::new();
    for i in 0..n {
        held.push(
            reg.register(&format!("tcp!h!{i}"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    assert_eq!(watcher.services().await.unwrap().len(), n);
    drop(held);
    super::within_for(limit, async {
        while !watcher.services().await.unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    reg
}
