//! A registry(4) server with Inferno's exact semantics (spec/registry.md).
//!
//! [`Server`] is the registry; [`Server::builder`] starts listeners ([`RunningServer`]).
//! Inside, one layer a file:
//! * `catalog`: the catalog as plain data (entries, attributes, change counter, `find`);
//! * `feed`: revisions, the bounded history and the watchers of the change feed (spec/feed.md);
//! * `index`: the attribute index that keeps `find` proportional to its answer;
//! * [`attrdb`]: the attrdb(6) parser for static services (`-f dbfile`);
//! * `node` and `fs`: the catalog as a 9P file system on [`crate::styx::server`];
//! * `server`: listeners on dial strings, single connections, start and shutdown;
//! * `frontend`: the same operations for a front-end in this process (the TCP shim).
//!
//! Where we knowingly differ from Inferno's `ndb/registry` (all on paths real clients never take):
//! * The attach name `feed` gives the change feed's tree (spec/feed.md); Inferno gives its one
//!   tree for every attach name, as we do for every other one ([`Server::without_feed`] for
//!   that one too).
//! * Tremove of a service file whose service is already gone answers `file does not exist`
//!   (Inferno dereferences nil and the registry dies).
//! * Tremove of a `find` or `event` fid forgets its filter or held read; Inferno leaves them
//!   behind, keyed by the fid number, for the next fid of that number to inherit.
//! * A held `event` read reports the counter as it is when the reader wakes, which may already
//!   include a later change (Inferno, single-threaded, answers at each change).
//! * The framework checks unknown open-mode bits and directory open modes before the file
//!   system's stat, so such an open of a service removed meanwhile says `bad argument` or
//!   `permission denied` where Inferno says `file does not exist`.

pub mod attrdb;
pub(crate) mod catalog;
mod feed;
mod frontend;
pub(crate) mod fs;
#[cfg(feature = "http")]
pub mod http;
pub(crate) mod index;
pub(crate) mod node;
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
mod record;
mod server;
#[cfg(feature = "etcd")]
mod store;
mod view;

pub use feed::FeedLimits;
pub(crate) use frontend::NewFile;
#[cfg(feature = "fuzzing")]
pub use record::fuzz_decode as fuzz_etcd_record;
pub use server::{
    AUTH_TIMEOUT, DEFAULT_LISTEN, RunningServer, Server, ServerAuth, ServerBuilder, ServerError,
};
#[cfg(feature = "etcd")]
pub use store::{DEFAULT_LEASE_TTL, DEFAULT_PREFIX, EtcdConfig};
pub use view::{FeedSubscription, ServiceInfo};
