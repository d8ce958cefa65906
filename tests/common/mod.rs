//! Helpers shared by the end-to-end tests (`mod common;` in a tests/*.rs file).
// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

pub mod etcd;
pub mod netns;
pub mod peers;
pub mod ramfs;
pub mod registry;
pub mod styx_checks;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The workspace root, where `spec/` and `tests/peers/` live, whichever package's tests include
/// this module.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .expect("the workspace root holds Cargo.lock")
        .to_path_buf()
}

/// How long a test waits for something that must happen: generous, so that a broken server
/// fails the test instead of hanging it, and a slow machine does not.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs `f`, failing the test if it takes longer than [`LIMIT`].
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f).await.expect("timed out")
}

/// Serves the 9P file system `fs` on a free loopback port through the crate's accept loop, until
/// the test ends; returns the bound address.
pub async fn serve_fs<F: registries::styx::server::FileSystem>(
    fs: std::sync::Arc<F>,
    limits: registries::styx::server::Limits,
) -> std::net::SocketAddr {
    use registries::net::{Accepting, Addr, Listener};
    use registries::styx::server::{ConnCtx, serve_connection};
    let addr = Addr::Tcp {
        host: "127.0.0.1".into(),
        port: 0,
    };
    let listener = Listener::bind(&addr).await.expect("bind loopback");
    let Addr::Tcp { port, .. } = listener.local_addr().clone() else {
        unreachable!("a TCP listener")
    };
    let mut accepting = Accepting::new();
    let max = limits.max_connections;
    accepting.spawn(
        "styx",
        vec![(listener, ())],
        max,
        registries::net::AtCap::Wait,
        move |(), stream, peer| {
            let (fs, limits) = (fs.clone(), limits.clone());
            async move {
                let ctx = ConnCtx {
                    authenticated_user: None,
                    peer,
                    settled: None,
                };
                let _ = serve_connection(stream, fs, ctx, limits).await;
            }
        },
    );
    tokio::spawn(accepting.wait());
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// Runs `f`, failing the test if it takes longer than `limit` (for the few waits that need more
/// than [`LIMIT`]).
pub async fn within_for<T>(limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f).await.expect("timed out")
}

/// A small seeded generator (SplitMix64): a run's choices repeat with its seed (the robustness
/// runs).
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Locks `m`, taking the data of a mutex a panicking thread left behind (a test reports its own
/// failures; a poisoned lock must not hide them).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
