//! The seam between scenarios and the systems they measure: one trait, implemented by our
//! registry (through the public registries(2) client, so any registry(4) server can be measured)
//! and by etcd (through its v3 gRPC API).

use std::future::Future;

/// Any failure while benchmarking; the scenario reports it and the bench goes on.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Shorthand for results in the bench.
pub type BenchResult<T> = Result<T, BenchError>;

/// Services in one selective-query group: a selective find answers this many.
pub const GROUP: usize = 10;

/// A service to register: its name and the group its attributes put it in.
#[derive(Debug, Clone)]
pub struct Svc {
    /// The service name (a dial string, as real registrations use).
    pub name: String,
    /// Its group attribute's value.
    pub group: String,
}

impl Svc {
    /// The `i`th service of the catalogue, in group `g{i / GROUP}`.
    pub fn catalogue(i: usize) -> Svc {
        Svc {
            name: format!("tcp!host{i}!7000"),
            group: format!("g{}", i / GROUP),
        }
    }

    /// The service held by the `i`th client of the connections scenario.
    pub fn client(i: usize) -> Svc {
        Svc {
            name: format!("tcp!client{i}!7000"),
            group: format!("k{}", i / GROUP),
        }
    }

    /// The `i`th short-lived service of client `c` in the register/unregister cycles.
    pub fn cycle(c: usize, i: usize) -> Svc {
        Svc {
            name: format!("tcp!c{c}x{i}!7000"),
            group: format!("c{c}"),
        }
    }

    /// The attributes every bench service has, in registry text order.
    pub fn attrs(&self) -> [(&str, &str); 3] {
        [("proto", "styx"), ("auth", "none"), ("group", &self.group)]
    }

    /// Bytes of the service's description as text: `name attr val ...` (what any store must
    /// keep at least), for the "beyond its attributes" memory figure.
    pub fn text_len(&self) -> usize {
        self.name.len()
            + self
                .attrs()
                .iter()
                .map(|(a, v)| 2 + a.len() + v.len())
                .sum::<usize>()
    }
}

/// What a find asks for.
#[derive(Debug, Clone)]
pub enum Query {
    /// The services of one group: `group gN` (etcd: the keys under `/svc/gN/`).
    Group(String),
    /// Every service: `proto *` (etcd: every key under `/svc/`).
    All,
}

/// A system under test. Each method is one client-visible operation.
pub trait System: Send + Sync + 'static {
    /// One client connection.
    type Conn: Clone + Send + Sync + 'static;
    /// A registration being held (dropping it may or may not remove it; `unregister` does).
    type Held: Send + 'static;
    /// One established watcher.
    type Watch: Send + 'static;
    /// One watcher that the system tells only of the changes it asked for, each change itself.
    type Changes: Send + 'static;

    /// The system's name in the report.
    fn label(&self) -> &'static str;

    /// The server's process id, when its memory can be read.
    fn pid(&self) -> Option<u32>;

    /// What the server holds in memory now, settled: its resident size, unless the system
    /// says otherwise (a JVM's resident size does not move with what it holds).
    fn held_memory(&self) -> impl Future<Output = Option<u64>> + Send {
        let pid = self.pid();
        async move {
            match pid {
                Some(pid) => super::sys::settled_rss(pid).await,
                None => None,
            }
        }
    }

    /// Opens a new client connection.
    fn connect(&self) -> impl Future<Output = BenchResult<Self::Conn>> + Send;

    /// Registers `svc` on `conn`.
    fn register(
        &self,
        conn: &Self::Conn,
        svc: &Svc,
    ) -> impl Future<Output = BenchResult<Self::Held>> + Send;

    /// Closes a connection and drops whatever it still holds (etcd: revokes its lease).
    fn disconnect(&self, conn: Self::Conn) -> impl Future<Output = BenchResult<()>> + Send;

    /// Removes a registration.
    fn unregister(&self, held: Self::Held) -> impl Future<Output = BenchResult<()>> + Send;

    /// Runs a find and returns how many services it answered.
    fn find(&self, conn: &Self::Conn, q: &Query)
    -> impl Future<Output = BenchResult<usize>> + Send;

    /// Starts watching every change; returns once the watch is established.
    fn watch(&self, conn: &Self::Conn) -> impl Future<Output = BenchResult<Self::Watch>> + Send;

    /// Waits for the next change seen by `w`.
    fn next_event(w: &mut Self::Watch) -> impl Future<Output = BenchResult<()>> + Send;

    /// Starts watching the changes of one group's services (ours: the change feed with the
    /// query `group G`; etcd: a watch of the prefix `/svc/G/`); returns once established.
    fn watch_group(
        &self,
        conn: &Self::Conn,
        group: &str,
    ) -> impl Future<Output = BenchResult<Self::Changes>> + Send;

    /// Starts following every service, change by change (ours: a `Monitor` of `proto *`,
    /// the registries(2) way to follow a catalogue; etcd: a watch of the prefix `/svc/`).
    fn follow_all(
        &self,
        conn: &Self::Conn,
    ) -> impl Future<Output = BenchResult<Self::Changes>> + Send;

    /// Waits for the next changes `w` is told of; returns how many came (etcd may batch).
    fn next_changes(w: &mut Self::Changes) -> impl Future<Output = BenchResult<usize>> + Send;
}
