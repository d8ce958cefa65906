//! The heartbeat: how a client learns that its registry went silent.
//!
//! A registry whose host is cut off sends no reset and no FIN: the connection looks open, a
//! waiting `event` read simply never returns, and only TCP keepalive notices, after a minute or
//! more. So while a 9P connection has heard nothing from the registry for half the bound, a
//! Tstat of the root goes out (a message every registry answers, Inferno's included); if the
//! registry has still said nothing when the bound is reached, the connection is hung up:
//! every request fails, an [`Events`](super::Events) stream ends, and a
//! [`Manager`](crate::manager::Manager) reconnects, to the next registry when it has several.
//! ZooKeeper's session pings and gRPC's keepalive do the same.

use crate::styx::Fid;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The default bound: a registry silent this long is given up. Shorter than the lease TTL of
/// an etcd front-end (10 s by default) plus the time to register elsewhere.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// How often a connection whose heartbeat is off looks whether it was turned on.
const OFF_CHECK: Duration = Duration::from_secs(1);

/// One connection's bound, changeable while it runs (0: off). A change wakes the heartbeat,
/// which may be waiting out a period of the bound before.
#[derive(Debug)]
pub(crate) struct Bound(tokio::sync::watch::Sender<Duration>);

impl Bound {
    pub(crate) fn new(bound: Duration) -> Arc<Bound> {
        Arc::new(Bound(tokio::sync::watch::Sender::new(bound)))
    }

    pub(crate) fn set(&self, bound: Duration) {
        self.0.send_replace(bound);
    }

    fn get(&self) -> Duration {
        *self.0.borrow()
    }
}

/// Runs the heartbeat of the connection `root` belongs to, for as long as `root` lives. Holds
/// only a weak reference between probes, so that it never keeps a connection open.
pub(crate) fn start(root: &Arc<Fid>, bound: Arc<Bound>) {
    let root = Arc::downgrade(root);
    let mut changed = bound.0.subscribe();
    tokio::spawn(async move {
        loop {
            match next_probe(&root, &bound) {
                Next::Stop => return,
                Next::Wait(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        r = changed.changed() => if r.is_err() { return },
                    }
                }
                Next::Probe(limit) => {
                    if !probe(&root, limit).await {
                        return;
                    }
                }
            }
        }
    });
}

enum Next {
    Stop,
    Wait(Duration),
    Probe(Duration),
}

/// What to do now: wait until the connection has been silent for half the bound, or probe it
/// (with the rest of the bound to answer in).
fn next_probe(root: &Weak<Fid>, bound: &Bound) -> Next {
    let Some(root) = root.upgrade() else {
        return Next::Stop;
    };
    let client = root.client();
    if client.is_closed() {
        return Next::Stop;
    }
    let bound = bound.get();
    if bound.is_zero() {
        return Next::Wait(OFF_CHECK);
    }
    let half = bound / 2;
    let silent = client.silent_for();
    if silent < half {
        Next::Wait(half - silent)
    } else {
        Next::Probe(bound.saturating_sub(silent).max(Duration::from_millis(1)))
    }
}

/// Sends one Tstat of the root and waits `limit` for anything from the registry; hangs the
/// connection up when nothing came. Whether to go on.
async fn probe(root: &Weak<Fid>, limit: Duration) -> bool {
    let Some(fid) = root.upgrade() else {
        return false;
    };
    let client = fid.client().clone();
    let answer = tokio::time::timeout(limit, fid.stat()).await;
    drop(fid);
    match answer {
        // Any answer will do, an Rerror included: the registry is there.
        Ok(Ok(_)) | Ok(Err(crate::styx::Error::Remote(_))) => return true,
        // The connection is gone already, or cannot send now (no free tag): nothing to probe
        // (a failure to send is not an answer, and must not make the loop spin).
        Ok(Err(_)) if client.is_closed() => return false,
        Ok(Err(_)) => tokio::time::sleep(limit).await,
        Err(_) => {}
    }
    if client.silent_for() < limit {
        return !client.is_closed();
    }
    let silent = client.silent_for();
    tracing::warn!("registry: no answer for {silent:?}: hanging up (heartbeat)");
    client.hang_up(format!(
        "registry did not answer for {:.1} s (heartbeat)",
        silent.as_secs_f64()
    ));
    false
}
