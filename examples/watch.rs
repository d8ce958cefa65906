//! Watch services come and go.
//!
//! Start a registry first (`registry serve`), then run this, and in another terminal
//! `registry register tcp!myhost!7001 proto styx` (interrupt it to see the service go):
//!
//! ```sh
//! cargo run --example watch                                 # net!$registry!registry
//! cargo run --example watch -- tcp!127.0.0.1!6675 proto styx
//! ```

use registries::client::{Attributes, Change, Registry, Service};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Arguments: [registry address] [attr val]...
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| registries::net::DEFAULT_REGISTRY.to_string());
    let words: Vec<String> = args.collect();
    let filter: Vec<(&str, &str)> = words
        .chunks_exact(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();

    let svc = Service::new(addr, Attributes::new([("auth", "none")]));
    let reg = Registry::connect(Some(&svc), None, None).await?;

    // The services already there come first, as additions.
    let mut monitor = reg.monitor(&filter).await?;
    while let Some(change) = monitor.next().await {
        match change? {
            Change::Added(s) => println!("added   {s}"),
            Change::Changed(s) => println!("changed {s}"),
            Change::Removed(s) => println!("removed {}", s.addr),
        }
    }
    Ok(())
}
