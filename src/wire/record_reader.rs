//! Reading the shim's lines (spec/registry.md §8): records ended by a newline outside single quotes, with a length limit.
//!
//! A service line may hold a value with a newline in it: `%q` (and the Perl client's `quote`)
//! writes it inside quotes, so a newline ends a record only outside quotes, as Limbo's `qgets`
//! reads the registry's files. Toggling at every `'` tracks that exactly, because a doubled quote
//! inside quotes closes and reopens them.

use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads newline-ended records from a stream, keeping at most `limit` bytes of one record.
/// Cancel-safe: a read that is dropped part-way loses nothing.
#[derive(Debug)]
// Hand-written, not nom: it scans bytes as they arrive from a socket, keeping only whether it is
// inside a quote, and must be cancel-safe mid-record; there is no grammar beyond that toggle.
pub struct RecordReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// How far `buf` has been scanned, and whether that point is inside quotes.
    scanned: usize,
    in_quote: bool,
    limit: usize,
    eof: bool,
    /// How long one read of the stream may wait for a byte; `None`: for ever.
    idle_timeout: Option<Duration>,
}

impl<R: AsyncRead + Unpin> RecordReader<R> {
    /// A reader of `inner` whose records may be at most `limit` bytes long.
    pub fn new(inner: R, limit: usize) -> RecordReader<R> {
        RecordReader {
            inner,
            buf: Vec::new(),
            scanned: 0,
            in_quote: false,
            limit,
            eof: false,
            idle_timeout: None,
        }
    }

    /// Fails a [`RecordReader::next_record`] with [`io::ErrorKind::TimedOut`] when the stream
    /// sends nothing for `timeout` (each byte that arrives starts the wait again); `None`: wait
    /// for ever.
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> RecordReader<R> {
        self.idle_timeout = timeout;
        self
    }

    /// The next record without its newline; a final record without a newline is returned as it
    /// is; `None` at the end of the stream. A record longer than the limit is an
    /// [`io::ErrorKind::InvalidData`] error.
    pub async fn next_record(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.scan() {
                if end > self.limit {
                    return Err(too_long(self.limit));
                }
                let mut rec: Vec<u8> = self.buf.drain(..=end).collect();
                rec.pop();
                self.scanned = 0;
                self.in_quote = false;
                return Ok(Some(rec));
            }
            if self.buf.len() > self.limit {
                return Err(too_long(self.limit));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                self.scanned = 0;
                self.in_quote = false;
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            let mut chunk = [0u8; 4096];
            let read = self.inner.read(&mut chunk);
            let n = match self.idle_timeout {
                Some(t) => tokio::time::timeout(t, read).await.map_err(|_| idle(t))??,
                None => read.await?,
            };
            if n == 0 {
                self.eof = true;
            } else {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
            }
        }
    }

    /// The position of the first newline outside quotes not yet scanned, if any.
    fn scan(&mut self) -> Option<usize> {
        while let Some(&b) = self.buf.get(self.scanned) {
            match b {
                b'\'' => self.in_quote = !self.in_quote,
                b'\n' if !self.in_quote => return Some(self.scanned),
                _ => {}
            }
            self.scanned += 1;
        }
        None
    }

    /// Bytes received but not yet returned as a record.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

/// The error for a record longer than `limit`.
fn too_long(limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("line longer than {limit} bytes"),
    )
}

/// The error for a stream that sent nothing for `timeout`.
fn idle(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("nothing received for {timeout:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn records(input: &[u8], limit: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut r = RecordReader::new(input, limit);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().await? {
            out.push(rec);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn splits_outside_quotes_only() {
        let got = records(b"a b\n'x\ny' z\n\nit''s 'it''s\n'\nlast", 100)
            .await
            .unwrap();
        let want: Vec<&[u8]> = vec![b"a b", b"'x\ny' z", b"", b"it''s 'it''s\n'", b"last"];
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn idle_stream_times_out_and_a_busy_one_does_not() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut r =
            RecordReader::new(server, 100).with_idle_timeout(Some(Duration::from_millis(50)));
        let e = r.next_record().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        use tokio::io::AsyncWriteExt;
        client.write_all(b"a b\n").await.unwrap();
        assert_eq!(r.next_record().await.unwrap(), Some(b"a b".to_vec()));
    }

    #[tokio::test]
    async fn limit_is_enforced() {
        assert!(records(b"0123456789\n", 5).await.is_err());
        assert_eq!(
            records(b"01234\n", 5).await.unwrap(),
            vec![b"01234".to_vec()]
        );
    }
}
