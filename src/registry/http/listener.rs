//! The HTTP side's accept loop: a cap on connections open at once, each counted in the metrics
//! until it closes.

use crate::metrics::OpenConnection;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often hitting the cap is logged at most.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// The pause after an accept error (out of descriptors, say) before the next accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A TCP listener that holds at most `cap` connections open; further ones wait in the backlog.
pub(super) struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    cap: usize,
    warned: Option<Instant>,
}

impl CappedListener {
    pub(super) fn new(inner: TcpListener, cap: usize) -> CappedListener {
        let cap = cap.max(1);
        CappedListener {
            inner,
            slots: Arc::new(Semaphore::new(cap)),
            cap,
            warned: None,
        }
    }

    async fn slot(&mut self) -> OwnedSemaphorePermit {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return slot;
        }
        crate::metrics::cap_reached("http");
        if self
            .warned
            .is_none_or(|t| t.elapsed() >= CAP_WARNING_INTERVAL)
        {
            tracing::warn!(
                "http: {} connections open, the cap (--http-max-connections): further \
                 connections wait in the listen backlog",
                self.cap
            );
            self.warned = Some(Instant::now());
        }
        loop {
            if let Ok(slot) = self.slots.clone().acquire_owned().await {
                return slot;
            }
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        let slot = self.slot().await;
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let counted = Counted {
                        stream,
                        _open: OpenConnection::new("http"),
                        _slot: slot,
                    };
                    return (counted, peer);
                }
                Err(e) => {
                    tracing::warn!("http: accept: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection, holding its slot and its place in the metrics until dropped.
pub(super) struct Counted {
    stream: TcpStream,
    _open: OpenConnection,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
