//! ZooKeeper as a [`System`], through the `zookeeper-client` crate (async, tokio), in the form
//! a ZooKeeper user gives service discovery: a client's session is a connection; a registration
//! is an ephemeral znode `/svc/GROUP/NAME` whose data is the service's attributes (so it goes
//! with the session, as a registration goes with its 9P connection); unregister deletes it.
//! A find lists the children of `/svc/GROUP` (or of every group under `/svc`, all at once) and
//! reads their data with multi-read requests of 1,000 paths, all in flight together, the fastest
//! way the protocol allows (rather than a `getData` per child); a watcher is a persistent recursive watch (ZooKeeper 3.6+) on the
//! prefix.
//!
//! The bench starts its own standalone server: Debian's `zookeeperd` (3.8) jar run by `java`
//! on a free loopback port, a fresh data directory on tmpfs (`/dev/shm`, as for etcd), no
//! per-host connection limit, the admin server off; killed and removed at the end.

use super::system::{BenchResult, Query, Svc, System};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use zookeeper_client as zk;

/// A running ZooKeeper, started by the bench.
pub struct ZooKeeper {
    cluster: String,
    child: Option<Child>,
    dir: Option<PathBuf>,
    /// Group znodes known to exist (they are persistent; registrations are created under them).
    groups: Arc<Mutex<HashSet<String>>>,
    /// The JDK's `jcmd` beside `java`, which reads the server's live heap.
    jcmd: String,
}

/// Paths per multi-read in a find (each answer some 100 bytes, well inside 1 MB).
const MULTI_READ: usize = 1000;

/// A held registration: the session it lives in and its path.
pub type ZkHeld = (zk::Client, String);

/// A persistent watch, with the session that keeps it.
pub struct ZkWatch {
    _client: zk::Client,
    watcher: zk::PersistentWatcher,
}

fn acl() -> zk::Acls<'static> {
    zk::Acls::anyone_all()
}

impl ZooKeeper {
    /// Starts ZooKeeper from `jar` (with `java`) on a free loopback port and waits until it
    /// answers.
    pub async fn spawn(java: &str, jar: &str) -> BenchResult<ZooKeeper> {
        if !std::path::Path::new(jar).exists() {
            return Err(format!("{jar} is missing (Debian: apt-get install zookeeperd)").into());
        }
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("registry-bench-zk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let port = super::sys::free_port()?;
        // Standalone: `ZooKeeperServerMain PORT DATADIR TICKTIME MAXCLIENTCNXNS` (0: no limit,
        // where the default of 60 per host would refuse the connections scenario).
        let child = Command::new(java)
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-Dzookeeper.root.logger=ERROR,CONSOLE")
            .arg("-cp")
            .arg(format!("/etc/zookeeper/conf:{jar}"))
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(port.to_string())
            .arg(&dir)
            .arg("2000")
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {java}: {e}"))?;
        let zk = ZooKeeper {
            cluster: format!("127.0.0.1:{port}"),
            child: Some(child),
            dir: Some(dir),
            groups: Arc::default(),
            jcmd: match java.strip_suffix("java") {
                Some(dir) => format!("{dir}jcmd"),
                None => "jcmd".to_string(),
            },
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match tokio::time::timeout(Duration::from_secs(2), zk.session()).await {
                Ok(Ok(c)) => {
                    ensure(&c, "/svc").await?;
                    break;
                }
                _ if Instant::now() > deadline => {
                    return Err("ZooKeeper did not start in 60 s".into());
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        Ok(zk)
    }

    async fn session(&self) -> BenchResult<zk::Client> {
        let mut connector = zk::Client::connector();
        connector.session_timeout(Duration::from_secs(30));
        Ok(connector.connect(&self.cluster).await?)
    }

    /// The group znode for `group`, created the first time.
    async fn group(&self, c: &zk::Client, group: &str) -> BenchResult<String> {
        let path = format!("/svc/{group}");
        if lock(&self.groups).contains(&path) {
            return Ok(path);
        }
        ensure(c, &path).await?;
        lock(&self.groups).insert(path.clone());
        Ok(path)
    }

    /// Every path and its data under `groups`: the groups listed all at once, then their
    /// children's data read by multi-reads of [`MULTI_READ`] paths, all in flight together (one
    /// multi-read of everything would pass ZooKeeper's 1 MB `jute.maxbuffer` at 100,000
    /// services, and the server drops the connection).
    async fn read_all(&self, c: &zk::Client, groups: Vec<String>) -> BenchResult<usize> {
        let listings = futures_util::future::join_all(groups.iter().map(|g| c.list_children(g)));
        let mut paths = Vec::new();
        for (g, listed) in groups.iter().zip(listings.await) {
            match listed {
                Ok(children) => paths.extend(children.into_iter().map(|n| format!("{g}/{n}"))),
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let reads = paths.chunks(MULTI_READ).map(|chunk| async move {
            let mut reader = c.new_multi_reader();
            for p in chunk {
                reader.add_get_data(p)?;
            }
            BenchResult::Ok(reader.commit().await?.len())
        });
        let mut n = 0;
        for r in futures_util::future::join_all(reads).await {
            n += r?;
        }
        Ok(n)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates persistent `path` unless it exists.
async fn ensure(c: &zk::Client, path: &str) -> BenchResult<()> {
    let opts = zk::CreateMode::Persistent.with_acls(acl());
    match c.create(path, b"", &opts).await {
        Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl System for ZooKeeper {
    type Conn = zk::Client;
    type Held = ZkHeld;
    type Watch = ZkWatch;
    type Changes = ZkWatch;

    fn label(&self) -> &'static str {
        "zookeeper"
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref()?.id()
    }

    /// The live heap after a full collection. The JVM's resident size is its committed heap,
    /// touched once over by its first collections and flat from then on, whatever it holds:
    /// 100,000 more sessions moved it by 137 B each, 100,000 watchers by nothing. Live data
    /// leaves out the room a collector needs besides, so this is ZooKeeper's figure at its
    /// lowest; where `jcmd` cannot answer, the resident size.
    fn held_memory(&self) -> impl Future<Output = Option<u64>> + Send {
        let (pid, jcmd) = (self.pid(), self.jcmd.clone());
        async move {
            let pid = pid?;
            match live_heap(&jcmd, pid).await {
                Some(b) => Some(b),
                None => super::sys::settled_rss(pid).await,
            }
        }
    }

    async fn connect(&self) -> BenchResult<zk::Client> {
        self.session().await
    }

    async fn disconnect(&self, conn: zk::Client) -> BenchResult<()> {
        // Dropping the last handle closes the session, and its ephemeral znodes go.
        drop(conn);
        Ok(())
    }

    async fn register(&self, conn: &zk::Client, svc: &Svc) -> BenchResult<ZkHeld> {
        let parent = self.group(conn, &svc.group).await?;
        let path = format!("{parent}/{}", svc.name);
        let data = registries::wire::format_pairs(svc.attrs());
        let opts = zk::CreateMode::Ephemeral.with_acls(acl());
        conn.create(&path, data.as_bytes(), &opts).await?;
        Ok((conn.clone(), path))
    }

    async fn unregister(&self, held: ZkHeld) -> BenchResult<()> {
        let (conn, path) = held;
        conn.delete(&path, None).await?;
        Ok(())
    }

    async fn find(&self, conn: &zk::Client, q: &Query) -> BenchResult<usize> {
        let groups = match q {
            Query::Group(g) => vec![format!("/svc/{g}")],
            Query::All => conn
                .list_children("/svc")
                .await?
                .into_iter()
                .map(|g| format!("/svc/{g}"))
                .collect(),
        };
        self.read_all(conn, groups).await
    }

    async fn watch(&self, conn: &zk::Client) -> BenchResult<ZkWatch> {
        watch_prefix(conn, "/svc").await
    }

    async fn next_event(w: &mut ZkWatch) -> BenchResult<()> {
        w.watcher.changed().await;
        Ok(())
    }

    async fn watch_group(&self, conn: &zk::Client, group: &str) -> BenchResult<ZkWatch> {
        let path = self.group(conn, group).await?;
        watch_prefix(conn, &path).await
    }

    async fn follow_all(&self, conn: &zk::Client) -> BenchResult<ZkWatch> {
        watch_prefix(conn, "/svc").await
    }

    async fn next_changes(w: &mut ZkWatch) -> BenchResult<usize> {
        w.watcher.changed().await;
        Ok(1)
    }
}

/// A persistent recursive watch of `path`, once the server has confirmed it.
async fn watch_prefix(conn: &zk::Client, path: &str) -> BenchResult<ZkWatch> {
    let watcher = conn
        .watch(path, zk::AddWatchMode::PersistentRecursive)
        .await?;
    Ok(ZkWatch {
        _client: conn.clone(),
        watcher,
    })
}

/// The bytes the JVM `pid` has in use on its heap right after a full collection (`jcmd PID
/// GC.run`, then the `used` of `GC.heap_info`), if `jcmd` answers.
async fn live_heap(jcmd: &str, pid: u32) -> Option<u64> {
    let run = |what: &'static str| {
        Command::new(jcmd)
            .arg(pid.to_string())
            .arg(what)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
    };
    if !run("GC.run").await.ok()?.status.success() {
        return None;
    }
    let out = run("GC.heap_info").await.ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `garbage-first heap   total 393216K, used 21034K [...]`: the heap's line comes first.
    let used = text.split("used ").nth(1)?;
    let kib: u64 = used.split('K').next()?.trim().parse().ok()?;
    Some(kib * 1024)
}
