//! The read-only HTTP side of a registry (`registry serve --http ADDR`): Prometheus metrics, the
//! catalog as JSON, the change feed as Server-Sent Events and a live page, on the same catalog
//! as the 9P server, in the same runtime.
//!
//! * `GET /metrics`: the Prometheus text exposition ([`crate::metrics`]).
//! * `GET /v1/services?attr=val&...`: the services `find` would give (`*` any value; no query:
//!   every service), as a JSON array of [`crate::wire::service_json`] objects.
//! * `GET /v1/changes?from=REV|snapshot=1&attr=val...`: the change feed (spec/feed.md), one
//!   event per change, `id:` its revision, `data:` [`crate::wire::change_json`]; a snapshot
//!   ends with an event `synced`; `Last-Event-ID` resumes after that revision; a revision no
//!   longer kept gives one event `compacted` (`{"oldest": N}`) and the end of the stream.
//! * `GET /v1/info`: services, revision, store, version.
//! * `GET /`: the page.
//!
//! With [`HttpConfig::show_catalog`] false (`serve --auth` without `--http-public`) everything
//! but `/metrics`, which holds counts and no names, answers 403.

mod api;
mod listener;

use super::Server;
use axum::Router;
use axum::routing::get;
use std::io;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// How the HTTP side serves.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Whether the catalog (the page, `/v1/...`) is shown; `/metrics` always is.
    pub show_catalog: bool,
    /// Most HTTP connections open at once (each event stream holds one); further ones wait in
    /// the listen backlog.
    pub max_connections: usize,
}

impl HttpConfig {
    /// The default [`HttpConfig::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            show_catalog: true,
            max_connections: HttpConfig::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[derive(Clone)]
struct State {
    server: Server,
    show_catalog: bool,
}

/// A running HTTP side; it stops when dropped.
#[derive(Debug)]
pub struct RunningHttp {
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningHttp {
    /// Listens on `addr` and serves `server`'s catalog there.
    pub async fn start(
        addr: SocketAddr,
        server: Server,
        config: HttpConfig,
    ) -> io::Result<RunningHttp> {
        let tcp = TcpListener::bind(addr).await?;
        let local = tcp.local_addr()?;
        let state = State {
            server,
            show_catalog: config.show_catalog,
        };
        let app = Router::new()
            .route("/", get(api::page))
            .route("/metrics", get(api::metrics))
            .route("/v1/info", get(api::info))
            .route("/v1/services", get(api::services))
            .route("/v1/changes", get(api::changes))
            .fallback(api::not_found)
            .method_not_allowed_fallback(api::not_allowed)
            .with_state(state);
        let listener = listener::CappedListener::new(tcp, config.max_connections);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("http: {e}");
            }
        });
        Ok(RunningHttp { local, task })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for RunningHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
