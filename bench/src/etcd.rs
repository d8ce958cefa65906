//! etcd as a [`System`], over its native v3 gRPC API (tonic and prost, through the stubs of
//! `registries-etcd-rpc`, which build without a system protoc), so that the comparison is
//! between the two servers, not between a fast and a slow protocol.
//!
//! The bench starts its own etcd on loopback: free ports, a fresh data directory on tmpfs
//! (`/dev/shm` when there is one, so that etcd's fsyncs cost what our in-memory registry's
//! lack of them costs: nothing), killed and removed at the end. The equivalent operations:
//! a client's connection grants one lease (as etcd's own `concurrency.Session` does); register is
//! a put of `/svc/GROUP/NAME` with the service's attributes as value and that lease; unregister is
//! a delete; find is a range over `/svc/GROUP/` (selective) or `/svc/` (everything); a watcher is
//! a watch stream on `/svc/`.

use super::system::{BenchResult, Query, Svc, System};
use registries_etcd_rpc::{
    DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
    WatchCreateRequest, WatchRequest, WatchResponse, kv_client::KvClient,
    lease_client::LeaseClient, prefix_end, watch_client::WatchClient, watch_request::RequestUnion,
};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tonic::Streaming;
use tonic::transport::Channel;

/// A running etcd, started by the bench.
pub struct Etcd {
    endpoint: String,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

/// One etcd client connection (an HTTP/2 channel) and the lease its registrations hang on.
#[derive(Clone)]
pub struct EtcdConn {
    channel: Channel,
    kv: KvClient<Channel>,
    lease: i64,
}

/// A watch stream, with the sender that keeps it open.
pub struct WatchStream {
    _requests: tokio::sync::mpsc::Sender<WatchRequest>,
    stream: Streaming<WatchResponse>,
}

impl WatchStream {
    async fn message(&mut self) -> BenchResult<Option<WatchResponse>> {
        Ok(self.stream.message().await?)
    }
}

/// Opens a channel to `endpoint`.
pub async fn channel(endpoint: &str) -> BenchResult<Channel> {
    Ok(Channel::from_shared(endpoint.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// The key a service is stored under.
fn key(svc: &Svc) -> String {
    format!("/svc/{}/{}", svc.group, svc.name)
}

impl Etcd {
    /// Starts `bin` on two free loopback ports and waits until it answers.
    pub async fn spawn(bin: &str) -> BenchResult<Etcd> {
        let mut one = Etcd::spawn_cluster(bin, 1).await?;
        one.pop().ok_or_else(|| "no etcd member".into())
    }

    /// Starts a cluster of `n` members of `bin` on free loopback ports, each with a data
    /// directory of its own, and waits until every member answers.
    pub async fn spawn_cluster(bin: &str, n: usize) -> BenchResult<Vec<Etcd>> {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let ports = (0..n)
            .map(|_| Ok((super::sys::free_port()?, super::sys::free_port()?)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, (client_port, peer_port)) in ports.into_iter().enumerate() {
            let dir = base.join(format!("registry-bench-etcd-{}-{i}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let client_url = format!("http://127.0.0.1:{client_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            let child = Command::new(bin)
                .arg(format!("--name=m{i}"))
                .arg(format!("--data-dir={}", dir.display()))
                .arg(format!("--listen-client-urls={client_url}"))
                .arg(format!("--advertise-client-urls={client_url}"))
                .arg(format!("--listen-peer-urls={peer_url}"))
                .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                .arg(format!("--initial-cluster={initial}"))
                .arg("--logger=zap")
                .arg("--log-level=error")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start {bin}: {e}"))?;
            members.push(Etcd {
                endpoint: client_url,
                child: Some(child),
                dir: Some(dir),
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for etcd in &members {
            loop {
                let probe = async {
                    let mut kv = KvClient::new(channel(&etcd.endpoint).await?);
                    let req = RangeRequest {
                        key: b"/probe".to_vec().into(),
                        ..Default::default()
                    };
                    kv.range(req).await.map_err(|e| e.to_string())?;
                    BenchResult::Ok(())
                };
                match tokio::time::timeout(Duration::from_secs(2), probe).await {
                    Ok(Ok(())) => break,
                    _ if Instant::now() > deadline => {
                        return Err("etcd did not start in 30 s".into());
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        Ok(members)
    }

    /// The member's client URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl System for Etcd {
    type Conn = EtcdConn;
    type Held = (EtcdConn, String);
    type Watch = WatchStream;
    type Changes = WatchStream;

    fn label(&self) -> &'static str {
        "etcd"
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref()?.id()
    }

    async fn connect(&self) -> BenchResult<EtcdConn> {
        connect_to(&self.endpoint).await
    }

    async fn disconnect(&self, conn: EtcdConn) -> BenchResult<()> {
        let req = LeaseRevokeRequest { id: conn.lease };
        LeaseClient::new(conn.channel).lease_revoke(req).await?;
        Ok(())
    }

    async fn register(&self, conn: &EtcdConn, svc: &Svc) -> BenchResult<(EtcdConn, String)> {
        let k = key(svc);
        let value = registries::wire::format_pairs(svc.attrs());
        put(conn, &k, &value).await?;
        Ok((conn.clone(), k))
    }

    async fn unregister(&self, held: (EtcdConn, String)) -> BenchResult<()> {
        let (conn, k) = held;
        delete(&conn, &k).await
    }

    async fn find(&self, conn: &EtcdConn, q: &Query) -> BenchResult<usize> {
        let prefix = match q {
            Query::Group(g) => format!("/svc/{g}/"),
            Query::All => "/svc/".to_string(),
        };
        let mut kv = conn.kv.clone();
        let req = RangeRequest {
            key: prefix.clone().into_bytes().into(),
            range_end: prefix_end(prefix.as_bytes()).into(),
            ..Default::default()
        };
        Ok(kv.range(req).await?.into_inner().kvs.len())
    }

    async fn watch(&self, conn: &EtcdConn) -> BenchResult<WatchStream> {
        watch_prefix(conn, "/svc/").await
    }

    async fn next_event(w: &mut WatchStream) -> BenchResult<()> {
        loop {
            match w.message().await? {
                Some(r) if !r.events.is_empty() => return Ok(()),
                Some(_) => continue,
                None => return Err("etcd watch ended".into()),
            }
        }
    }

    async fn watch_group(&self, conn: &EtcdConn, group: &str) -> BenchResult<WatchStream> {
        watch_prefix(conn, &format!("/svc/{group}/")).await
    }

    async fn follow_all(&self, conn: &EtcdConn) -> BenchResult<WatchStream> {
        watch_prefix(conn, "/svc/").await
    }

    async fn next_changes(w: &mut WatchStream) -> BenchResult<usize> {
        loop {
            match w.message().await? {
                Some(r) if !r.events.is_empty() => return Ok(r.events.len()),
                Some(_) => continue,
                None => return Err("etcd watch ended".into()),
            }
        }
    }
}

/// Puts `key` with the connection's lease.
pub async fn put(conn: &EtcdConn, key: &str, value: &str) -> BenchResult<()> {
    let req = PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        lease: conn.lease,
        ..Default::default()
    };
    conn.kv.clone().put(req).await?;
    Ok(())
}

/// Deletes `key`.
pub async fn delete(conn: &EtcdConn, key: &str) -> BenchResult<()> {
    let req = DeleteRangeRequest {
        key: key.as_bytes().to_vec().into(),
        ..Default::default()
    };
    conn.kv.clone().delete_range(req).await?;
    Ok(())
}

/// Waits for a watch response that carries events.
pub async fn next_event(w: &mut WatchStream) -> BenchResult<()> {
    <Etcd as System>::next_event(w).await
}

/// One connection to `endpoint` with a lease that outlives the run without keep-alives.
pub async fn connect_to(endpoint: &str) -> BenchResult<EtcdConn> {
    let channel = channel(endpoint).await?;
    let req = LeaseGrantRequest { ttl: 3600, id: 0 };
    let lease = LeaseClient::new(channel.clone())
        .lease_grant(req)
        .await?
        .into_inner()
        .id;
    // A find over 100,000 services answers megabytes: lift tonic's 4 MiB default.
    let kv = KvClient::new(channel.clone()).max_decoding_message_size(1 << 30);
    Ok(EtcdConn { channel, kv, lease })
}

/// A watch of every key under `prefix`, once etcd has confirmed it (the first response says
/// the watch exists; events after it are never missed).
pub async fn watch_prefix(conn: &EtcdConn, prefix: &str) -> BenchResult<WatchStream> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: prefix.as_bytes().to_vec().into(),
            range_end: prefix_end(prefix.as_bytes()).into(),
            ..Default::default()
        })),
    };
    tx.send(create)
        .await
        .map_err(|_| "watch request not sent")?;
    let requests =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let stream = WatchClient::new(conn.channel.clone())
        .watch(requests)
        .await?
        .into_inner();
    let mut w = WatchStream {
        _requests: tx,
        stream,
    };
    match w.message().await? {
        Some(r) if r.created => Ok(w),
        _ => Err("etcd watch not created".into()),
    }
}
