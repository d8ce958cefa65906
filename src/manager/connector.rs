//! How the manager reaches a registry, again and again.

use crate::client::{self, Registry};
use crate::wire::ShimPorts;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type ConnectFn = dyn Fn() -> BoxFuture<'static, client::Result<Registry>> + Send + Sync;

/// Makes a fresh connection to a registry each time the manager needs one.
#[derive(Clone)]
pub struct Connector(Arc<ConnectFn>);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl Connector {
    /// 9P2000 to the registry at a dial string (`tcp!host!6675`), with `auth none`, attaching as
    /// `$USER`. Nothing is mounted in the process name space.
    pub fn styx(addr: impl Into<String>) -> Connector {
        let addr: String = addr.into();
        Connector::from_fn(move || {
            let addr = addr.clone();
            async move {
                let conn = client::dial(&addr).await?;
                Registry::connect_stream(conn, None).await
            }
        })
    }

    /// The TCP shim at `host` and `ports` (Inferno::RegMgr::TCP).
    pub fn shim(host: impl Into<String>, ports: ShimPorts) -> Connector {
        let host: String = host.into();
        Connector::from_fn(move || {
            let host = host.clone();
            async move { Registry::connect_shim(&host, ports).await }
        })
    }

    /// Several registries serving one catalog (`registry serve --etcd` front-ends): the first
    /// connection tries them in the order given and uses the first that answers; each later one
    /// (the manager makes one when a connection is lost) starts with the registry after the one
    /// used last, and goes round them all, so that a registry that went silent or was cut off
    /// from etcd is tried last rather than first. The error of the last one tried is returned
    /// when none answers. Give each connector its own time limit (a silent host does not refuse
    /// a dial, it lets it hang), as the `registry` command does with `--timeout`.
    ///
    /// ```
    /// use registries::manager::{Connector, Manager};
    /// let both = Connector::failover([Connector::styx("tcp!a!6675"), Connector::styx("tcp!b!6675")]);
    /// # async fn demo(both: Connector) { let _manager = Manager::new(both); }
    /// ```
    pub fn failover(connectors: impl IntoIterator<Item = Connector>) -> Connector {
        let list: Arc<[Connector]> = connectors.into_iter().collect();
        // Where the next connection starts: after the one that made the last.
        let next = Arc::new(AtomicUsize::new(0));
        Connector::from_fn(move || {
            let (list, next) = (Arc::clone(&list), Arc::clone(&next));
            async move {
                let mut last = client::Error::Unsupported("no registry to connect to");
                let start = next.load(Ordering::Relaxed);
                for i in (start..start + list.len()).map(|i| i % list.len()) {
                    match list[i].connect().await {
                        Ok(reg) => {
                            next.store((i + 1) % list.len(), Ordering::Relaxed);
                            return Ok(reg);
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        })
    }

    /// Any way of making a [`Registry`], e.g. with authentication or over a Unix socket.
    pub fn from_fn<F, Fut>(f: F) -> Connector
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = client::Result<Registry>> + Send + 'static,
    {
        Connector(Arc::new(move || Box::pin(f())))
    }

    /// Makes one connection.
    pub async fn connect(&self) -> client::Result<Registry> {
        (self.0)().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A connector that records its name when asked and always fails.
    fn failing(name: &'static str, log: &Arc<Mutex<Vec<&'static str>>>) -> Connector {
        let log = Arc::clone(log);
        Connector::from_fn(move || {
            log.lock().unwrap().push(name);
            async { Err(client::Error::Unsupported("down")) }
        })
    }

    #[tokio::test]
    async fn failover_goes_round_all_of_them_each_time() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let c = Connector::failover([failing("a", &log), failing("b", &log), failing("c", &log)]);
        assert!(c.connect().await.is_err());
        assert!(c.connect().await.is_err());
        // Nothing connected: each attempt starts where the last one did.
        assert_eq!(*log.lock().unwrap(), ["a", "b", "c", "a", "b", "c"]);
    }

    #[tokio::test]
    async fn failover_starts_after_the_registry_used_last() {
        let server = Server::builder()
            .listen_str("tcp!127.0.0.1!0")
            .unwrap()
            .start()
            .await
            .unwrap();
        let addr = server.local_addrs()[0].to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let good = {
            let log = Arc::clone(&log);
            let ok = Connector::styx(addr);
            Connector::from_fn(move || {
                log.lock().unwrap().push("b");
                let ok = ok.clone();
                async move { ok.connect().await }
            })
        };
        let c = Connector::failover([failing("a", &log), good, failing("c", &log)]);
        assert!(c.connect().await.is_ok());
        assert!(c.connect().await.is_ok());
        // The second connection starts after b (the one lost), goes round, and ends at b again.
        assert_eq!(*log.lock().unwrap(), ["a", "b", "c", "a", "b"]);
    }

    use crate::registry::Server;
}
