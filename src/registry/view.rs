//! What the read-only views of a registry (the HTTP API, the metrics) read of its catalog: the
//! services matching a query, with owner and persistence, and change-feed subscriptions held
//! in process.

use super::Server;
use super::feed::Watcher;
use super::fs::RegistryFs;
#[cfg(feature = "metrics")]
use crate::metrics::CatalogState;
#[cfg(feature = "json")]
use crate::wire;
use crate::wire::FeedRequest;
use std::sync::Arc;

/// A registered service as the views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Its name.
    pub name: String,
    /// Its attribute/value pairs, in the service's order.
    pub attrs: Vec<(String, String)>,
    /// The user that registered it (`registry` for static services).
    pub owner: String,
    /// Whether it outlives the registration that made it (`persist` is a non-zero integer).
    pub persist: bool,
}

impl ServiceInfo {
    /// The service as JSON (see [`wire::service_json`]).
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> serde_json::Value {
        let pairs = self.attrs.iter().map(|(a, v)| (a.as_str(), v.as_str()));
        wire::service_json(&self.name, pairs, Some(&self.owner))
    }
}

/// A change-feed watcher held in process ([`Server::watch`]): its records, as the feed's `watch`
/// file gives them, until dropped.
#[derive(Debug)]
pub struct FeedSubscription {
    fs: Arc<RegistryFs>,
    id: u64,
    watcher: Arc<Watcher>,
    first: Option<String>,
}

impl FeedSubscription {
    /// The next records (whole lines of spec/feed.md's text), waiting until there are some; an
    /// `Err` is the `compacted` text when the watcher fell behind (it is then ended).
    pub async fn next_text(&mut self) -> Result<String, String> {
        if let Some(first) = self.first.take().filter(|f| !f.is_empty()) {
            return Ok(first);
        }
        self.watcher.next_text().await
    }
}

impl Drop for FeedSubscription {
    fn drop(&mut self) {
        self.fs.catalog().unwatch(self.id);
    }
}

impl Server {
    /// The services matching `query` as `find` matches them (every pair must match, `*` any
    /// value; empty: every service), in `index` order.
    pub fn services(&self, query: &[(String, String)]) -> Vec<ServiceInfo> {
        let catalog = self.fs().catalog();
        let (found, _) = catalog.find(query);
        found
            .into_iter()
            .filter_map(|e| {
                Some(ServiceInfo {
                    name: e.name()?.to_string(),
                    attrs: e
                        .attrs()
                        .iter()
                        .map(|(a, v)| (a.to_string(), v.to_string()))
                        .collect(),
                    owner: e.owner.to_string(),
                    persist: e.persists(),
                })
            })
            .collect()
    }

    /// Starts a change-feed watcher in process, as a write of `req` to the feed's `watch` file
    /// does (spec/feed.md); `Err` is the feed's refusal (e.g. the `compacted` text).
    pub fn watch(&self, req: &FeedRequest) -> Result<FeedSubscription, String> {
        let (id, watcher, first) = self.fs().catalog().watch(req)?;
        Ok(FeedSubscription {
            fs: Arc::clone(self.fs()),
            id,
            watcher,
            first: Some(first),
        })
    }

    /// The change feed's revision now.
    pub fn revision(&self) -> u64 {
        self.fs().catalog().feed_revision()
    }

    /// Whether the catalog is kept in etcd.
    pub fn uses_etcd(&self) -> bool {
        !self.fs().in_memory()
    }

    /// The catalog's figures for the metrics.
    #[cfg(feature = "metrics")]
    pub fn catalog_state(&self) -> CatalogState {
        let store = self
            .fs()
            .store_health()
            .map(|(up, since)| (up, since.as_secs_f64()));
        let catalog = self.fs().catalog();
        let mut state = CatalogState {
            feed_watchers: catalog.feed_watchers(),
            revision: catalog.feed_revision(),
            store,
            ..CatalogState::default()
        };
        for e in catalog.named() {
            if e.persists() {
                state.persistent += 1;
            } else {
                state.transient += 1;
            }
        }
        state
    }
}
