//! Spread requests over the echo services registered right now, with tower's p2c balancer.
//!
//! Starts a registry and three echo services in this process, each registered with `proto
//! echo`, sends requests through `tower::balance::p2c::Balance` over a `Discovery`, stops one
//! of the services halfway and shows where the requests went:
//!
//! ```sh
//! cargo run --example balance
//! ```

use futures_util::StreamExt;
use registries::client::{Discovery, Error, Registered};
use registries::{Attributes, Registry, Server, Service};
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;
use tower::balance::p2c::Balance;
use tower::discover::Change;
use tower::{Service as _, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), tower::BoxError> {
    let running = Server::builder()
        .listen_str("tcp!127.0.0.1!0")?
        .start()
        .await?;
    let reg = Registry::open(running.addr()).await?;
    println!("registry at {}", running.addr());

    let mut echoes = Vec::new();
    for _ in 0..3 {
        echoes.push(echo(&reg).await?);
    }

    // The balancer's services: one `Echo` for each service registered with `proto echo`, each
    // with its requests in flight as its load. The removals it takes are noted on the way.
    let removed = Arc::new(Mutex::new(HashSet::new()));
    let noted = Arc::clone(&removed);
    let discovery = Discovery::new(&reg, &[("proto", "echo")], Echo)
        .await?
        .pending_requests()
        .inspect(move |change| match change {
            Ok(Change::Insert(name, _)) => println!("balancer: {name} added"),
            Ok(Change::Remove(name)) => {
                println!("balancer: {name} removed");
                noted.lock().unwrap().insert(name.clone());
            }
            Err(e) => println!("balancer: {e}"),
        });
    let mut balance = Balance::new(discovery);

    // Who answered, before and after the stop.
    let mut counts: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    for i in 0..30 {
        let (from, _) = balance.ready().await?.call(format!("request {i}")).await?;
        counts.entry(from).or_default()[0] += 1;
    }

    // Stop one as a service should: unregister, serve until the balancer has seen it go, and
    // only then stop listening.
    let (name, registration, listener) = echoes.remove(1);
    registration.close().await?;
    println!("{name} unregistered");
    let mut meanwhile = 0;
    while !removed.lock().unwrap().contains(&name) {
        balance.ready().await?.call("meanwhile".into()).await?;
        meanwhile += 1;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    listener.abort();
    println!("{name} stopped; requests sent while its removal was on its way: {meanwhile}");

    for i in 30..60 {
        let (from, _) = balance.ready().await?.call(format!("request {i}")).await?;
        counts.entry(from).or_default()[1] += 1;
    }

    println!("{:<22} {:>6} {:>6}", "service", "before", "after");
    for (service, [before, after]) in &counts {
        println!("{service:<22} {before:>6} {after:>6}");
    }
    let after_stop = counts.get(&name).map_or(0, |[_, after]| *after);
    assert_eq!(after_stop, 0, "a request went to {name} after it stopped");
    Ok(())
}

/// Serves echo on a free loopback port and registers it: its name, its registration (the
/// service is listed while it lives) and the task that listens.
async fn echo(reg: &Registry) -> Result<(String, Registered, JoinHandle<()>), Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let name = format!("tcp!127.0.0.1!{}", listener.local_addr()?.port());
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let attrs = Attributes::new([("proto", "echo")]);
    let registration = reg.register(&name, &attrs, false).await?;
    Ok((name, registration, task))
}

/// The tower service for one echo service: a request is a line, sent on a connection of its
/// own (made with `Service::attach`); the response is who answered, and the line it sent back.
struct Echo(Service);

impl tower::Service<String> for Echo {
    type Response = (String, String);
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, line: String) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move {
            let mut conn = BufReader::new(svc.attach(None, None).await?.fd);
            conn.write_all(format!("{line}\n").as_bytes()).await?;
            let mut reply = String::new();
            conn.read_line(&mut reply).await?;
            Ok((svc.addr, reply.trim_end().to_string()))
        })
    }
}
