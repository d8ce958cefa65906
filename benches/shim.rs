//! `cargo bench --bench shim`: prints TCP shim and manager figures.
//!
//! * `find` round trips (10 services) through our 9P client, through the shim's find port with
//!   raw TCP (one connection per query, as the Perl client does), and through the shim client;
//! * change notification latency: a registration through 9P until its line arrives on the
//!   event port;
//! * manager recovery: from a registry restart on the same port until the manager's
//!   registrations are back (median of several restarts), over 9P and over the shim.

use registries::client::{Attributes, Registry};
use registries::manager::{Connector, Manager};
use registries::net::Addr;
use registries::registry::{RunningServer, Server};
use registries::shim::{Builder, Local, ShimPorts};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const RUN: Duration = Duration::from_secs(2);

async fn serve(port: u16) -> RunningServer {
    loop {
        match Server::builder()
            .listen_str(&format!("tcp!127.0.0.1!{port}"))
            .expect("dial string")
            .start()
            .await
        {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn port_of(s: &RunningServer) -> u16 {
    match &s.local_addrs()[0] {
        Addr::Tcp { port, .. } => *port,
        _ => 0,
    }
}

/// Runs `op` repeatedly for [`RUN`] and prints the rate and mean latency.
async fn rate<F, Fut>(label: &str, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        op().await;
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label:<48} {:>9.0} ops/s  {:>8.1} µs/op",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    println!(
        "shim bench ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let server = serve(0).await;
    let port = port_of(&server);
    let shim = Builder::new(Local::new(server.server().clone()))
        .ports(ShimPorts::EPHEMERAL)
        .start()
        .await
        .expect("shim");
    let addrs = shim.local_addrs();
    let direct = Registry::connect_stream(
        TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect"),
        None,
    )
    .await
    .expect("attach");
    let mut held = Vec::new();
    for i in 0..10 {
        let attrs = Attributes::new([("proto", "styx"), ("n", &i.to_string())]);
        held.push(
            direct
                .register(&format!("tcp!h!{i}"), &attrs, false)
                .await
                .expect("register"),
        );
    }
    rate("find proto=styx, 9P client", || async {
        assert_eq!(
            direct.find(&[("proto", "styx")]).await.expect("find").len(),
            10
        );
    })
    .await;
    rate("find proto=styx, shim find port (raw TCP)", || async {
        let mut s = TcpStream::connect(addrs.find).await.expect("connect");
        s.write_all(b"proto styx\n").await.expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 10);
    })
    .await;
    let via_shim = Registry::connect_shim("127.0.0.1", addrs.ports())
        .await
        .expect("shim client");
    rate("find proto=styx, shim client", || async {
        assert_eq!(
            via_shim
                .find(&[("proto", "styx")])
                .await
                .expect("find")
                .len(),
            10
        );
    })
    .await;

    let mut ev = BufReader::new(TcpStream::connect(addrs.event).await.expect("connect"));
    let mut line = String::new();
    ev.read_line(&mut line).await.expect("READY");
    // Not through `rate`: the loop borrows the event connection mutably.
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < RUN {
        n += 1;
        let r = direct
            .register(&format!("tcp!ev!{n}"), &Attributes::default(), false)
            .await
            .expect("reg");
        line.clear();
        ev.read_line(&mut line).await.expect("event");
        r.close().await.expect("close");
        line.clear();
        ev.read_line(&mut line).await.expect("event");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{:<48} {:>9.0} ops/s  {:>8.1} µs/op",
        "register+close (9P), both event lines (shim)",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
    drop(held);
    shim.shutdown().await;
    server.shutdown().await;

    for over_shim in [false, true] {
        let mut server = serve(0).await;
        let port = port_of(&server);
        let mut shim = Builder::new(Local::new(server.server().clone()))
            .ports(ShimPorts::EPHEMERAL)
            .start()
            .await
            .expect("shim");
        let ports = shim.local_addrs().ports();
        let connector = if over_shim {
            Connector::shim("127.0.0.1", ports)
        } else {
            Connector::styx(format!("tcp!127.0.0.1!{port}"))
        };
        let mgr = Manager::new(connector);
        let svcs: Vec<_> = (0..5)
            .map(|i| mgr.register(format!("tcp!m!{i}"), Attributes::new([("k", "v")])))
            .collect();
        for s in &svcs {
            s.wait_registered().await.expect("registered");
        }
        let mut times = Vec::new();
        for round in 0..7 {
            shim.shutdown().await;
            server.shutdown().await;
            let t = Instant::now();
            server = serve(port).await;
            shim = loop {
                match Builder::new(Local::new(server.server().clone()))
                    .ports(ports)
                    .start()
                    .await
                {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            };
            mgr.wait_connections(round + 2).await.expect("reconnected");
            for s in &svcs {
                s.wait_registered().await.expect("registered");
            }
            times.push(t.elapsed());
        }
        let how = if over_shim { "shim" } else { "9P" };
        println!(
            "{:<48} median {:?}, worst {:?}",
            format!("manager back after restart ({how}, 5 services)"),
            median(times.clone()),
            times.iter().max().copied().unwrap_or_default()
        );
        mgr.shutdown().await;
        shim.shutdown().await;
        server.shutdown().await;
    }
}
