//! A real etcd cluster for a test binary: Debian's `etcd` (package etcd-server), members on free
//! loopback ports with scratch data directories under the target directory.
//!
//! The members are started by a thread that lives as long as the test binary and are tied to it
//! with `PR_SET_PDEATHSIG`, so they die with the test process however it ends. Without the `etcd`
//! binary a test is skipped with a message, except under `REGISTRY_REQUIRE_PEERS=1` (CI), where
//! it fails.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The etcd server binary.
const ETCD: &str = "etcd";

/// Whether etcd is installed; says why a test skips when it is not (and fails under
/// `REGISTRY_REQUIRE_PEERS=1`).
pub fn available() -> bool {
    let ok = Command::new(ETCD)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("REGISTRY_REQUIRE_PEERS").is_none(),
            "etcd is not installed (Debian: apt-get install etcd-server)"
        );
        eprintln!("skipped: etcd is not installed (Debian: apt-get install etcd-server)");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Gives `cmd` (an `etcd`) the flags of a test member: `name`, its data directory, its client
/// and peer URLs, the `initial` cluster, and a 50 ms heartbeat and 500 ms election timeout, so
/// that a failover takes a fraction of a second; its output is discarded.
pub fn member_args(
    cmd: &mut Command,
    name: &str,
    dir: &std::path::Path,
    client: &str,
    peer: &str,
    initial: &str,
) {
    cmd.arg("--name")
        .arg(name)
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
        ])
        .args([
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
        ])
        .args([
            "--initial-cluster",
            initial,
            "--initial-cluster-state",
            "new",
        ])
        .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
}

/// One member: its ports, data directory and process.
struct Member {
    name: String,
    client: u16,
    peer: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running cluster. Dropping it kills the members.
pub struct Cluster {
    members: Vec<Member>,
    initial: String,
    /// Requests to the spawning thread, which must outlive the members (PR_SET_PDEATHSIG).
    spawner: std::sync::mpsc::Sender<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>,
}

/// Starts `cmd` from the long-lived spawner thread.
fn spawn_from(
    spawner: &std::sync::mpsc::Sender<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>,
    cmd: Command,
) -> Child {
    let (tx, rx) = std::sync::mpsc::channel();
    spawner.send((cmd, tx)).expect("the spawner thread runs");
    rx.recv()
        .expect("the spawner answers")
        .expect("etcd starts")
}

impl Cluster {
    /// Starts `n` members and waits until the cluster serves requests.
    pub fn start(n: usize) -> Cluster {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "etcd-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).expect("scratch directory");
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                dir: base.join(format!("m{i}")),
                child: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let (spawner, requests) =
            std::sync::mpsc::channel::<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>(
            );
        std::thread::spawn(move || {
            for (mut cmd, reply) in requests {
                let _ = reply.send(cmd.spawn());
            }
            // Keep this thread (the members' parent thread) alive until the process ends.
            loop {
                std::thread::park();
            }
        });
        let mut cluster = Cluster {
            members,
            initial,
            spawner,
        };
        for i in 0..n {
            cluster.restart(i);
        }
        cluster.wait_healthy();
        cluster
    }

    fn command(&self, m: &Member) -> Command {
        let mut cmd = Command::new(ETCD);
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        member_args(&mut cmd, &m.name, &m.dir, &client, &peer, &self.initial);
        // SAFETY: prctl is async-signal-safe; it only asks for SIGKILL when the parent thread
        // (the spawner, alive as long as the test process) goes.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }

    /// The client URLs, comma-separated, as `--etcd` takes them.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URLs as a list.
    pub fn endpoint_list(&self) -> Vec<String> {
        self.endpoints().split(',').map(str::to_string).collect()
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data directory (or for the first time).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let cmd = self.command(&self.members[i]);
        let child = spawn_from(&self.spawner, cmd);
        self.members[i].child = Some(child);
    }

    /// Kills every member, then starts them all again on the same data directories.
    pub fn restart_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        for i in 0..self.members.len() {
            self.restart(i);
        }
        self.wait_healthy();
    }

    /// Runs `etcdctl` against the running members, with API v3.
    fn etcdctl(&self, args: &[&str]) -> Option<String> {
        let eps: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect();
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", eps.join(",")))
            .args(["--dial-timeout=1s", "--command-timeout=2s"])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits until a write goes through.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.etcdctl(&["put", "/health", "ok"]).is_none() {
            assert!(Instant::now() < deadline, "etcd never became healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the current leader.
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(json) = self.etcdctl(&["endpoint", "status", "-w", "fields"]) {
                // `fields` prints one block per endpoint, `"Key" : value` lines ending with
                // `"Endpoint"`; the leader's block has MemberID equal to Leader.
                let (mut member, mut leader) = (String::new(), String::new());
                for line in json.lines() {
                    let value = line
                        .split(" : ")
                        .nth(1)
                        .unwrap_or("")
                        .trim()
                        .trim_matches('"');
                    if line.starts_with("\"MemberID\"") {
                        member = value.to_string();
                    } else if line.starts_with("\"Leader\"") {
                        leader = value.to_string();
                    } else if line.starts_with("\"Endpoint\"")
                        && !member.is_empty()
                        && member == leader
                    {
                        let port: u16 = value.rsplit(':').next().unwrap_or("").parse().unwrap_or(0);
                        if let Some(i) = self.members.iter().position(|m| m.client == port) {
                            return i;
                        }
                    }
                }
            }
            assert!(Instant::now() < deadline, "no etcd leader");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Puts a key directly (foreign data under a prefix, say).
    pub fn put(&self, key: &str, value: &str) {
        self.etcdctl(&["put", key, value]).expect("etcdctl put");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if let Some(m) = self.members.first()
            && let Some(base) = m.dir.parent()
        {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// The cluster shared by the tests of one binary: three members, started by the first test that
/// asks. `None` (the test skips) when etcd is not installed.
pub fn shared() -> Option<Arc<Mutex<Cluster>>> {
    static CLUSTER: std::sync::OnceLock<Option<Arc<Mutex<Cluster>>>> = std::sync::OnceLock::new();
    CLUSTER
        .get_or_init(|| available().then(|| Arc::new(Mutex::new(Cluster::start(3)))))
        .clone()
}

/// A key prefix no other test uses.
pub fn fresh_prefix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "/test-{}-{}/",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
