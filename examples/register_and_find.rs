//! Register a service, find it, update it, and let it go.
//!
//! Start a registry first (`registry serve`), then:
//!
//! ```sh
//! cargo run --example register_and_find                      # net!$registry!registry
//! cargo run --example register_and_find -- tcp!127.0.0.1!6675
//! ```

use registries::client::{Attributes, Registry, Service};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The registry to use: the first argument, else the default `net!$registry!registry`.
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| registries::net::DEFAULT_REGISTRY.to_string());
    let reg = Registry::connect(
        Some(&Service::new(addr, Attributes::new([("auth", "none")]))),
        None,
        None,
    )
    .await?;

    // Register: the service stays while `held` lives.
    let attrs = Attributes::new([("proto", "styx"), ("description", "an example service")]);
    let mut held = reg.register("tcp!localhost!7001", &attrs, false).await?;

    for svc in reg.find(&[("proto", "styx")]).await? {
        println!("found: {svc}");
    }

    // Change an attribute, then look again ("*" matches any value).
    held.update(&Attributes::new([("load", "5")])).await?;
    for svc in reg.find(&[("load", "*")]).await? {
        println!("with a load: {svc}");
    }

    // Closing the registration removes the service (it is not persistent).
    held.close().await?;
    println!(
        "after close: {} matching",
        reg.find(&[("proto", "styx")]).await?.len()
    );
    Ok(())
}
