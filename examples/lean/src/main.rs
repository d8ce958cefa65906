//! Registers this program and lists its peers: the client alone, nothing of the server.
//!
//! ```sh
//! cargo run --release -- serve --demo &                      # a registry, from the project root
//! cargo run --manifest-path examples/lean/Cargo.toml -- 'tcp!127.0.0.1!6675'
//! ```

use registries::{Attributes, Registry};

#[tokio::main]
async fn main() -> Result<(), registries::Error> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp!127.0.0.1!6675".to_string());
    let reg = Registry::open(&addr).await?;
    let me = format!("tcp!127.0.0.1!{}", 7000 + std::process::id() % 1000);
    // Registered while `held` lives; gone from the registry when the program ends.
    let held = reg
        .register(&me, &Attributes::new([("proto", "lean")]), false)
        .await?;
    for peer in reg.find(&[("proto", "lean")]).await? {
        println!("{peer}");
    }
    held.close().await
}
