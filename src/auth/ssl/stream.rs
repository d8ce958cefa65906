//! The record layer as a byte stream: [`SslStream`] turns writes into records and records
//! back into bytes, so 9P or anything else can run over it (spec/infpk1.md §9.4).

use super::config::SslConfig;
use super::record::{Opener, Sealer};
use crate::auth::AuthError;
use bytes::{Buf, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An ssl-protected stream over `S`. Both directions use the same secret and start at
/// sequence number 0 (§5.3). Any bad record makes every later read and write fail (§6.7).
pub struct SslStream<S> {
    inner: S,
    cfg: SslConfig,
    sealer: Sealer,
    opener: Opener,
    /// Raw bytes from `inner` not yet making a whole record.
    raw: BytesMut,
    /// Data of the last record not yet read.
    plain: BytesMut,
    /// Records not yet written to `inner`.
    out: Vec<u8>,
    out_pos: usize,
    /// Why the connection died, once it has.
    dead: Option<&'static str>,
    /// `inner` reached end of file.
    eof: bool,
}

impl<S> SslStream<S> {
    /// Wraps `inner`, keyed with `secret` in both directions, with the transforms of `cfg`.
    pub fn new(inner: S, cfg: &SslConfig, secret: &[u8]) -> Result<Self, AuthError> {
        Ok(SslStream {
            inner,
            cfg: *cfg,
            sealer: Sealer::new(cfg, secret)?,
            opener: Opener::new(cfg, secret)?,
            raw: BytesMut::with_capacity(8192),
            plain: BytesMut::new(),
            out: Vec::new(),
            out_pos: 0,
            dead: None,
            eof: false,
        })
    }

    /// The transforms in use.
    pub fn config(&self) -> &SslConfig {
        &self.cfg
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn dead_error(why: &'static str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, why)
    }
}

impl<S: AsyncWrite + Unpin> SslStream<S> {
    /// Writes out pending records.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let pending = self.out.get(self.out_pos..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SslStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(why) = this.dead {
                return Poll::Ready(Err(Self::dead_error(why)));
            }
            if !this.plain.is_empty() {
                let n = this.plain.len().min(buf.remaining());
                buf.put_slice(this.plain.get(..n).unwrap_or_default());
                this.plain.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(size) = Opener::record_size(&this.raw).filter(|&s| this.raw.len() >= s) {
                let rec = this.raw.split_to(size);
                match this.opener.open(&rec) {
                    // A record without data is skipped rather than shown as end of file.
                    Ok(data) => this.plain = BytesMut::from(bytes::Bytes::from(data)),
                    Err(e) => {
                        let why = match e {
                            AuthError::Record(w) => w,
                            _ => "bad ssl record",
                        };
                        this.dead = Some(why);
                        return Poll::Ready(Err(Self::dead_error(why)));
                    }
                }
                continue;
            }
            if this.eof {
                if this.raw.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.dead = Some("ssl record cut short");
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "ssl record cut short",
                )));
            }
            let mut tmp = [0u8; 16384];
            let mut rb = ReadBuf::new(&mut tmp);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                this.eof = true;
            } else {
                this.raw.extend_from_slice(rb.filled());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SslStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(why) = this.dead {
            return Poll::Ready(Err(Self::dead_error(why)));
        }
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let m = this.sealer.next_chunk(buf.len());
        let chunk = buf.get(..m).unwrap_or_default();
        this.sealer
            .seal(chunk, &mut this.out)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // Start sending now; a pending or failed send shows up on the next call.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            this.dead = Some("ssl write failed");
            tracing::debug!("ssl write failed: {e}");
        }
        Poll::Ready(Ok(m))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
