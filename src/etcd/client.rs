//! [`Etcd`]: the calls, each tried endpoint after endpoint until its deadline.

use super::error::EtcdError;
use super::prefix_end;
use super::rpc::{
    self, KeyValue, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseRevokeRequest, RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchCreateRequest,
    WatchRequest, WatchResponse, kv_client::KvClient, lease_client::LeaseClient,
    watch_client::WatchClient,
};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};

/// Keys read per range request when loading a prefix: a page stays far below gRPC's 4 MiB
/// message limit even with long service lines.
const PAGE: i64 = 2_000;

/// Where etcd is and how long to try.
#[derive(Debug, Clone)]
pub(crate) struct EtcdOptions {
    /// Client URLs of the members: `host:port` or `http://host:port`.
    pub endpoints: Vec<String>,
    /// How long one attempt on one endpoint may take.
    pub attempt_timeout: Duration,
    /// How long a call keeps trying endpoints before it reports etcd unavailable.
    pub deadline: Duration,
}

impl EtcdOptions {
    /// These endpoints, with attempts of 2 s and calls that give up after 5 s.
    pub(crate) fn new(endpoints: Vec<String>) -> EtcdOptions {
        EtcdOptions {
            endpoints,
            attempt_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
        }
    }
}

/// A client of one etcd cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Etcd {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    channels: Vec<(String, Channel)>,
    /// The endpoint that answered last: calls start there.
    current: AtomicUsize,
    opts: EtcdOptions,
}

/// The sending half of a bidirectional stream and the responses.
pub(crate) type Duplex<Req, Resp> = (mpsc::Sender<Req>, Streaming<Resp>);

fn endpoint(url: &str) -> Result<Endpoint, EtcdError> {
    let bad = |why: String| EtcdError::Endpoint {
        endpoint: url.to_string(),
        why,
    };
    if url.starts_with("https://") {
        return Err(bad("TLS is not supported: use http://".into()));
    }
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let ep = Endpoint::from_shared(full).map_err(|e| bad(e.to_string()))?;
    Ok(ep
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(3))
        .keep_alive_while_idle(true))
}

/// Turns a stream of requests fed by a channel into what tonic sends.
fn outgoing<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
}

impl Etcd {
    /// A client of the cluster at `opts.endpoints`; nothing is dialled until the first call.
    pub(crate) fn new(opts: EtcdOptions) -> Result<Etcd, EtcdError> {
        if opts.endpoints.is_empty() {
            return Err(EtcdError::Endpoint {
                endpoint: String::new(),
                why: "no endpoint given".into(),
            });
        }
        let channels = opts
            .endpoints
            .iter()
            .map(|url| Ok((url.clone(), endpoint(url)?.connect_lazy())))
            .collect::<Result<Vec<_>, EtcdError>>()?;
        Ok(Etcd {
            inner: Arc::new(Inner {
                channels,
                current: AtomicUsize::new(0),
                opts,
            }),
        })
    }

    /// Runs `op` on the current endpoint and, while it fails in a way another may not, on the
    /// next ones, until the deadline.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, EtcdError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        self.call_with(false, op).await
    }

    /// [`Etcd::call`], which with `once` stops at the first attempt that may have reached a
    /// member: a request that must not be applied twice (a guarded write whose guard could hold
    /// again, as a create's does once the key is gone) is sent at most once, and its fate is then
    /// the caller's to find out. Attempts that never left (a refused connect) are tried again.
    async fn call_with<T, F, Fut>(&self, once: bool, op: F) -> Result<T, EtcdError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let inner = &self.inner;
        let n = inner.channels.len();
        let deadline = Instant::now() + inner.opts.deadline;
        let start = inner.current.load(Ordering::Relaxed);
        let mut i = start;
        // Whether an attempt may have reached a member: then the call's failure leaves the
        // request's outcome unknown (spec/etcd.md, "Writes that get no answer").
        let mut maybe_sent = false;
        loop {
            let (name, channel) = &inner.channels[i % n];
            let why =
                match tokio::time::timeout(inner.opts.attempt_timeout, op(channel.clone())).await {
                    Ok(Ok(v)) => {
                        inner.current.store(i % n, Ordering::Relaxed);
                        return Ok(v);
                    }
                    Ok(Err(status)) if !EtcdError::retryable(&status) && !maybe_sent => {
                        return Err(EtcdError::Refused(status.message().to_string()));
                    }
                    Ok(Err(status)) if !EtcdError::retryable(&status) => {
                        return Err(EtcdError::Unknown(format!(
                            "{name}: {} (an earlier attempt got no answer)",
                            status.message()
                        )));
                    }
                    Ok(Err(status)) => {
                        maybe_sent |= !EtcdError::never_sent(&status);
                        format!("{name}: {}", status.message())
                    }
                    Err(_) => {
                        maybe_sent = true;
                        format!("{name}: no answer within {:?}", inner.opts.attempt_timeout)
                    }
                };
            tracing::debug!("etcd: {why}");
            if maybe_sent && once {
                return Err(EtcdError::Unknown(why));
            }
            if Instant::now() >= deadline {
                return Err(if maybe_sent {
                    EtcdError::Unknown(why)
                } else {
                    EtcdError::Unavailable(why)
                });
            }
            i += 1;
            if (i - start).is_multiple_of(n) {
                // Every endpoint failed once: etcd is electing a leader, or down. Pause a little.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Every key under `prefix` at one revision, sorted by creation (oldest first), and that
    /// revision.
    pub(crate) async fn range_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let end = prefix_end(prefix);
        let mut kvs = Vec::new();
        let mut from = prefix.to_vec();
        let mut revision = 0;
        loop {
            let req = RangeRequest {
                key: from.clone().into(),
                range_end: end.clone().into(),
                limit: PAGE,
                revision,
                ..Default::default()
            };
            let resp = self.range(req).await?;
            if revision == 0 {
                revision = resp.header.map_or(0, |h| h.revision);
            }
            let more = resp.more;
            if let Some(last) = resp.kvs.last() {
                from = last.key.to_vec();
                from.push(0);
            }
            kvs.extend(resp.kvs);
            if !more {
                break;
            }
        }
        kvs.sort_by_key(|kv| kv.create_revision);
        Ok((kvs, revision))
    }

    /// One range read.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, EtcdError> {
        self.call(|ch| {
            let req = req.clone();
            async move { Ok(KvClient::new(ch).range(req).await?.into_inner()) }
        })
        .await
    }

    /// The key `key`, if it is there, and the revision it was read at.
    pub(crate) async fn get(&self, key: &[u8]) -> Result<(Option<KeyValue>, i64), EtcdError> {
        let resp = self
            .range(RangeRequest {
                key: key.to_vec().into(),
                ..Default::default()
            })
            .await?;
        let rev = resp.header.as_ref().map_or(0, |h| h.revision);
        Ok((resp.kvs.into_iter().next(), rev))
    }

    /// One transaction. A transaction whose answer was lost may have been committed: callers
    /// that retry check what the store holds.
    pub(crate) async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, EtcdError> {
        self.call(|ch| {
            let req = req.clone();
            async move { Ok(KvClient::new(ch).txn(req).await?.into_inner()) }
        })
        .await
    }

    /// One transaction, sent at most once ([`Etcd::call_with`]): a failure after it may have
    /// reached a member is [`EtcdError::Unknown`] at once.
    pub(crate) async fn txn_once(&self, req: TxnRequest) -> Result<TxnResponse, EtcdError> {
        self.call_with(true, |ch| {
            let req = req.clone();
            async move { Ok(KvClient::new(ch).txn(req).await?.into_inner()) }
        })
        .await
    }

    /// A new lease of `ttl` seconds: its id.
    pub(crate) async fn grant(&self, ttl: i64) -> Result<i64, EtcdError> {
        let resp = self
            .call(|ch| async move {
                let req = LeaseGrantRequest { ttl, id: 0 };
                Ok(LeaseClient::new(ch).lease_grant(req).await?.into_inner())
            })
            .await?;
        if !resp.error.is_empty() {
            return Err(EtcdError::Refused(resp.error));
        }
        Ok(resp.id)
    }

    /// Ends lease `id` now: the keys attached to it go at once.
    pub(crate) async fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        self.call(|ch| async move {
            let req = LeaseRevokeRequest { id };
            LeaseClient::new(ch).lease_revoke(req).await.map(|_| ())
        })
        .await
    }

    /// A keep-alive stream: send a lease id to renew it; each answer carries its TTL (0 when
    /// the lease is gone).
    /// The first renewal of lease `id` is sent with the call: etcd answers a stream's headers
    /// only once it has a request.
    pub(crate) async fn keep_alive(
        &self,
        id: i64,
    ) -> Result<Duplex<LeaseKeepAliveRequest, LeaseKeepAliveResponse>, EtcdError> {
        self.call(|ch| async move {
            let (tx, rx) = mpsc::channel(4);
            tx.send(LeaseKeepAliveRequest { id })
                .await
                .map_err(|_| tonic::Status::internal("keep-alive request not sent"))?;
            let stream = LeaseClient::new(ch)
                .lease_keep_alive(outgoing(rx))
                .await?
                .into_inner();
            Ok((tx, stream))
        })
        .await
    }

    /// A watch of every key under `prefix` from revision `start` on, created: the first
    /// response (`created`) has been read.
    pub(crate) async fn watch(
        &self,
        prefix: &[u8],
        start: i64,
    ) -> Result<Duplex<WatchRequest, WatchResponse>, EtcdError> {
        let create = WatchRequest {
            request_union: Some(rpc::watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: prefix.to_vec().into(),
                    range_end: prefix_end(prefix).into(),
                    start_revision: start,
                    progress_notify: true,
                    prev_kv: false,
                },
            )),
        };
        self.call(|ch| {
            let create = create.clone();
            async move {
                let (tx, rx) = mpsc::channel(4);
                tx.send(create)
                    .await
                    .map_err(|_| tonic::Status::internal("watch request not sent"))?;
                let mut stream = WatchClient::new(ch).watch(outgoing(rx)).await?.into_inner();
                match stream.message().await? {
                    Some(first) if first.created => Ok((tx, stream)),
                    _ => Err(tonic::Status::unavailable("watch not created")),
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member that refuses the connection never saw the request: the call's failure is a
    /// refusal, not an unknown outcome.
    #[tokio::test]
    async fn a_refused_connection_is_never_sent() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut opts = EtcdOptions::new(vec![format!("127.0.0.1:{port}")]);
        opts.deadline = Duration::from_millis(10);
        let etcd = Etcd::new(opts).unwrap();
        let err = etcd.range_prefix(b"/x/").await.unwrap_err();
        assert!(matches!(err, EtcdError::Unavailable(_)), "{err}");
        let (_, ch) = &etcd.inner.channels[0];
        let status = KvClient::new(ch.clone())
            .range(RangeRequest::default())
            .await
            .unwrap_err();
        assert!(EtcdError::never_sent(&status), "{status:?}");
    }
}
