//! The process's Prometheus metrics (`registry serve --http`, `GET /metrics`): counters and
//! gauges that the layers below update as they work, and the text exposition of them.
//!
//! One set per process, as Prometheus clients usually keep it: every server, shim and listener in
//! the process adds to the same figures. Figures that are a state of the catalog (services
//! registered, watchers) are read from it when scraped, by whoever renders the text.
//! Label values come from small fixed sets (message types, listener names, Inferno's
//! diagnostics); an unknown one past [`MAX_LABEL_VALUES`] is counted as `other`, so that no
//! input can grow the exposition without bound.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Most distinct values one free-text label (a diagnostic, an auth failure) takes; later new
/// ones are counted as `other`.
pub const MAX_LABEL_VALUES: usize = 64;

/// A metric's one label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Listener {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MsgType {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DiagnosticLabel {
    diagnostic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Persist {
    persist: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadKind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SettledLabel {
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 10 µs to about 2.6 s.
    Histogram::new(exponential_buckets(1e-5, 4.0, 10))
}

/// Every figure the process keeps.
struct Metrics {
    registry: Registry,
    connections_open: Family<Listener, Gauge>,
    connections_total: Family<Listener, Counter>,
    cap_waits: Family<Listener, Counter>,
    requests: Family<MsgType, Counter>,
    latency: HistogramFamily<MsgType>,
    rerrors: Family<DiagnosticLabel, Counter>,
    auths: Family<Outcome, Counter>,
    waiting_reads: Family<ReadKind, Gauge>,
    services: Family<Persist, Gauge>,
    limit_hits: Family<LimitLabel, Counter>,
    feed_watchers: Gauge,
    revision: Gauge,
    store_connected: Gauge,
    store_lag: Gauge,
    store_expiries: Counter,
    store_settled: Family<SettledLabel, Counter>,
    seen_labels: Mutex<HashSet<String>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("registry");
        let m = Metrics {
            connections_open: Family::default(),
            connections_total: Family::default(),
            cap_waits: Family::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            rerrors: Family::default(),
            auths: Family::default(),
            waiting_reads: Family::default(),
            services: Family::default(),
            limit_hits: Family::default(),
            feed_watchers: Gauge::default(),
            revision: Gauge::default(),
            store_connected: Gauge::default(),
            store_lag: Gauge::default(),
            store_expiries: Counter::default(),
            store_settled: Family::default(),
            seen_labels: Mutex::new(HashSet::new()),
            registry: Registry::default(),
        };
        registry.register(
            "connections_open",
            "Connections open now, by listener (9p, 9p-auth, shim new/find/event, http)",
            m.connections_open.clone(),
        );
        registry.register(
            "connections",
            "Connections accepted, by listener",
            m.connections_total.clone(),
        );
        registry.register(
            "connection_cap_waits",
            "Times a listener was at its connection cap, so further connections waited in the \
             listen backlog (for the shim: --shim-max-connections)",
            m.cap_waits.clone(),
        );
        registry.register(
            "styx_requests",
            "9P requests answered, by message type",
            m.requests.clone(),
        );
        registry.register(
            "styx_request_duration_seconds",
            "Time from a 9P request's arrival to its reply, by message type",
            m.latency.clone(),
        );
        registry.register(
            "styx_rerrors",
            "9P requests answered with Rerror, by diagnostic",
            m.rerrors.clone(),
        );
        registry.register(
            "authentications",
            "infpk1 authentications, by result and reason",
            m.auths.clone(),
        );
        registry.register(
            "waiting_reads",
            "Reads held until something happens: event (registry(4) event file) and feed \
             (change-feed watchers, over 9P or HTTP)",
            m.waiting_reads.clone(),
        );
        registry.register(
            "services",
            "Services registered, by whether they persist",
            m.services.clone(),
        );
        registry.register(
            "limit_hits",
            "Times a limit closed a connection or refused a request, by limit (each also logged): \
             9p_handshake_deadline, 9p_message_deadline, 9p_reader_stalled, 9p_idle_timeout, \
             9p_outstanding, 9p_fids, 9p_evicted, shim_find_deadline, shim_new_deadline, \
             shim_reply_deadline, shim_reply_budget",
            m.limit_hits.clone(),
        );
        registry.register(
            "feed_watchers",
            "Change-feed watchers subscribed",
            m.feed_watchers.clone(),
        );
        registry.register(
            "revision",
            "The catalog's change-feed revision (in etcd mode: etcd's revision × 1,000,000 + the change's place in it)",
            m.revision.clone(),
        );
        registry.register(
            "store_connected",
            "With --etcd: 1 while the catalog's etcd answers, else 0 (0 without --etcd)",
            m.store_connected.clone(),
        );
        registry.register(
            "store_session_expiries",
            "With etcd: times the front-end's lease went unconfirmed for its TTL, so that it \
             closed its clients' connections and refused changes until etcd confirmed a lease",
            m.store_expiries.clone(),
        );
        registry.register(
            "store_unanswered_writes",
            "With etcd: writes whose transaction got no answer, fenced off and then found \
             applied (result=applied) or not (result=fenced)",
            m.store_settled.clone(),
        );
        registry.register(
            "store_lag_seconds",
            "With --etcd: seconds since etcd last answered this server",
            m.store_lag.clone(),
        );
        Metrics { registry, ..m }
    }

    /// `value`, or `other` once [`MAX_LABEL_VALUES`] distinct free-text values were seen.
    fn bounded(&self, value: &str) -> String {
        let mut seen = self.seen_labels.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(value) || seen.len() < MAX_LABEL_VALUES {
            seen.insert(value.to_string());
            value.to_string()
        } else {
            "other".to_string()
        }
    }
}

/// One connection open on `listener`, counted until dropped.
#[derive(Debug)]
pub struct OpenConnection(&'static str);

impl OpenConnection {
    /// Counts a connection accepted on `listener`.
    pub fn new(listener: &'static str) -> OpenConnection {
        let l = Listener {
            listener: listener.to_string(),
        };
        METRICS.connections_total.get_or_create(&l).inc();
        METRICS.connections_open.get_or_create(&l).inc();
        OpenConnection(listener)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let l = Listener {
            listener: self.0.to_string(),
        };
        METRICS.connections_open.get_or_create(&l).dec();
    }
}

/// A limit bit: it closed a connection or refused a request. `limit` is one of a fixed set of
/// names (see the metric's help).
pub fn limit_hit(limit: &'static str) {
    limit_hits(limit, 1);
}

/// [`limit_hit`] `n` times at once.
pub fn limit_hits(limit: &'static str, n: u64) {
    METRICS
        .limit_hits
        .get_or_create(&LimitLabel {
            limit: limit.to_string(),
        })
        .inc_by(n);
}

/// The front-end's etcd lease went unconfirmed for its TTL (its clients were disconnected).
pub fn store_session_expired() {
    METRICS.store_expiries.inc();
}

/// A write that got no answer from etcd was fenced off and found `applied` or not.
pub fn store_write_settled(applied: bool) {
    let result = if applied { "applied" } else { "fenced" };
    METRICS
        .store_settled
        .get_or_create(&SettledLabel {
            result: result.to_string(),
        })
        .inc();
}

/// `listener` is at its connection cap.
pub fn cap_reached(listener: &'static str) {
    METRICS
        .cap_waits
        .get_or_create(&Listener {
            listener: listener.to_string(),
        })
        .inc();
}

/// A 9P request of type `name` was answered after `took`, with `rerror` when it failed.
pub fn styx_request(name: &'static str, took: Duration, rerror: Option<&str>) {
    let t = MsgType {
        r#type: name.to_string(),
    };
    METRICS.requests.get_or_create(&t).inc();
    METRICS
        .latency
        .get_or_create(&t)
        .observe(took.as_secs_f64());
    if let Some(e) = rerror {
        let diagnostic = METRICS.bounded(e);
        METRICS
            .rerrors
            .get_or_create(&DiagnosticLabel { diagnostic })
            .inc();
    }
}

/// An infpk1 authentication ended: `Ok` or the reason it failed.
pub fn authentication(result: Result<(), &str>) {
    let o = match result {
        Ok(()) => Outcome {
            result: "ok".into(),
            reason: String::new(),
        },
        Err(why) => Outcome {
            result: "failed".into(),
            reason: METRICS.bounded(why),
        },
    };
    METRICS.auths.get_or_create(&o).inc();
}

/// A read held until something happens (`kind`: `event` or `feed`), counted until dropped.
#[derive(Debug)]
pub struct WaitingRead(&'static str);

impl WaitingRead {
    /// Counts a held read of `kind`.
    pub fn new(kind: &'static str) -> WaitingRead {
        METRICS
            .waiting_reads
            .get_or_create(&ReadKind { kind: kind.into() })
            .inc();
        WaitingRead(kind)
    }
}

impl Drop for WaitingRead {
    fn drop(&mut self) {
        METRICS
            .waiting_reads
            .get_or_create(&ReadKind {
                kind: self.0.into(),
            })
            .dec();
    }
}

/// The catalog's state when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogState {
    /// Services that persist.
    pub persistent: usize,
    /// Services that go with their registration.
    pub transient: usize,
    /// Change-feed watchers subscribed.
    pub feed_watchers: usize,
    /// The feed's revision.
    pub revision: u64,
    /// With etcd: whether it answers, and seconds since it last did.
    pub store: Option<(bool, f64)>,
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The Prometheus text exposition of every figure, with the catalog's state as `state`.
pub fn render(state: &CatalogState) -> String {
    let m = &*METRICS;
    for (label, n) in [("true", state.persistent), ("false", state.transient)] {
        m.services
            .get_or_create(&Persist {
                persist: label.into(),
            })
            .set(gauge(n as u64));
    }
    m.feed_watchers.set(gauge(state.feed_watchers as u64));
    m.revision.set(gauge(state.revision));
    if let Some((up, lag)) = state.store {
        m.store_connected.set(i64::from(up));
        m.store_lag.set(lag.round() as i64);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
    out
}
