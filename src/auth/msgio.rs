//! Inferno's message framing (spec/infpk1.md §1): `DDDD\n` data messages and `!DDD\n` error
//! messages, read without ever consuming a byte past the message (§1.3).

use super::AuthError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload read during the protocol (§1.4, `Keyring->auth`).
pub const MAX_AUTH_MSG: usize = 4094;
/// Largest payload of the algorithm message and of key-file records (§1.4).
pub const MAX_MSG: usize = 4095;

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A data message and its payload.
    Data(Vec<u8>),
    /// An error message and its text.
    Error(String),
}

/// The 5-byte header of a data message of `n` bytes.
fn data_header(n: usize) -> String {
    format!("{n:04}\n")
}

/// Sends one data message; the header and payload go in one write so that a small message
/// is one segment.
pub async fn send<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> Result<(), AuthError> {
    if payload.len() > 9999 {
        return Err(AuthError::text("message too long"));
    }
    let mut buf = data_header(payload.len()).into_bytes();
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Sends one error message with `text` (cut to 999 bytes, the most the header can say).
pub async fn send_error<W: AsyncWrite + Unpin>(w: &mut W, text: &str) -> Result<(), AuthError> {
    let mut end = text.len().min(999);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let body = text.get(..end).unwrap_or_default();
    let mut buf = format!("!{:03}\n", body.len()).into_bytes();
    buf.extend_from_slice(body.as_bytes());
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Parses a 5-byte header into (is_error, length) as Inferno's `getmsg` does (spec/infpk1.md
/// §1.3): `!` first makes it an error, and the length is C's `strtoul` of the rest: leading
/// white space skipped, a sign taken, digits up to the first non-digit, none at all being 0. So
/// `0012\n` is 12, and a header that is not a number at all (`abcd\n`, a 9P message) is an
/// empty data message, which the protocol then refuses as Inferno does.
// Not nom: five bytes at fixed places.
pub fn parse_header(h: &[u8; 5]) -> (bool, usize) {
    let (err, field) = if h[0] == b'!' {
        (true, &h[1..])
    } else {
        (false, &h[..])
    };
    (err, strtoul(field))
}

/// The length of a key file's data header, `DDDD\n` exactly: a key file is ours to judge
/// strictly, and a damaged one is better said so than read as empty fields.
fn data_length(h: &[u8; 5]) -> Option<usize> {
    let digits = h.get(..4)?;
    if h[4] != b'\n' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |a, d| a * 10 + usize::from(d - b'0')))
}

/// C's `strtoul(s, 0, 10)` on `field`, saturating; a negative number wraps, as in C, to a length
/// too large for any reader.
fn strtoul(field: &[u8]) -> usize {
    let mut rest = field
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .peekable();
    let negative = match rest.peek() {
        Some(b'-') => {
            rest.next();
            true
        }
        Some(b'+') => {
            rest.next();
            false
        }
        _ => false,
    };
    let n = rest
        .take_while(|b| b.is_ascii_digit())
        .fold(0usize, |a, d| {
            a.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        });
    if negative && n > 0 { usize::MAX } else { n }
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended before the first byte.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<bool, AuthError> {
    let mut got = 0;
    while got < buf.len() {
        let n = match r.read(&mut buf[got..]).await {
            Ok(n) => n,
            Err(_) if got == 0 => return Ok(false),
            Err(_) => return Err(AuthError::Format),
        };
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err(AuthError::Format)
            };
        }
        got += n;
    }
    Ok(true)
}

/// Reads one message of at most `max` payload bytes. Failures are Inferno's: `hungup` when
/// nothing could be read or the length is too large, `input or format error` otherwise.
pub async fn recv<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Msg, AuthError> {
    let mut h = [0u8; 5];
    if !read_full(r, &mut h).await? {
        return Err(AuthError::Hungup);
    }
    let (err, n) = parse_header(&h);
    if n > max {
        return Err(AuthError::Hungup);
    }
    let mut payload = vec![0u8; n];
    if n > 0 && !read_full(r, &mut payload).await? {
        return Err(AuthError::Format);
    }
    Ok(if err {
        Msg::Error(String::from_utf8_lossy(&payload).into_owned())
    } else {
        Msg::Data(payload)
    })
}

/// Splits `bytes` into its first `count` data messages (key files, §2); anything after them
/// is ignored, as Inferno's reader does.
// Not nom: fixed five-byte headers, each followed by its payload.
pub fn split_records(bytes: &[u8], count: usize) -> Result<Vec<&[u8]>, AuthError> {
    let mut out = Vec::with_capacity(count);
    let mut rest = bytes;
    for i in 0..count {
        let h: &[u8; 5] = rest
            .get(..5)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| AuthError::text(format!("key file: message {} missing", i + 1)))?;
        let n = data_length(h)
            .ok_or_else(|| AuthError::text(format!("key file: bad header in message {}", i + 1)))?;
        if n > MAX_MSG {
            return Err(AuthError::text("key file: message too long"));
        }
        let payload = rest
            .get(5..5 + n)
            .ok_or_else(|| AuthError::text(format!("key file: message {} cut short", i + 1)))?;
        out.push(payload);
        rest = rest.get(5 + n..).unwrap_or_default();
    }
    Ok(out)
}

/// Frames `payload` as one data message (for writing key files).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = data_header(payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn framing_examples() {
        let mut out = Vec::new();
        send(&mut out, b"1").await.unwrap();
        send(&mut out, b"OK").await.unwrap();
        send(&mut out, b"").await.unwrap();
        send_error(&mut out, "remote: incompatible authentication protocol")
            .await
            .unwrap();
        assert_eq!(
            out,
            b"0001\n10002\nOK0000\n!044\nremote: incompatible authentication protocol"
        );
        let mut r = &out[..];
        assert_eq!(recv(&mut r, 10).await.unwrap(), Msg::Data(b"1".to_vec()));
        assert_eq!(recv(&mut r, 10).await.unwrap(), Msg::Data(b"OK".to_vec()));
        assert_eq!(recv(&mut r, 10).await.unwrap(), Msg::Data(vec![]));
        assert!(
            matches!(recv(&mut r, 100).await.unwrap(), Msg::Error(t) if t.starts_with("remote: inc"))
        );
        assert!(matches!(recv(&mut r, 10).await, Err(AuthError::Hungup)));
    }

    #[tokio::test]
    async fn bad_input() {
        assert!(matches!(
            recv(&mut &b"00"[..], 10).await,
            Err(AuthError::Format)
        ));
        // Not a number: an empty data message, as Inferno's strtoul makes it.
        assert!(matches!(
            recv(&mut &b"x001\na"[..], 10).await,
            Ok(Msg::Data(d)) if d.is_empty()
        ));
        assert!(matches!(
            recv(&mut &b" 002\nab"[..], 10).await,
            Ok(Msg::Data(d)) if d == b"ab"
        ));
        assert!(matches!(
            recv(&mut &b"-001\na"[..], 10).await,
            Err(AuthError::Hungup)
        ));
        assert!(matches!(
            recv(&mut &b"0005\nab"[..], 10).await,
            Err(AuthError::Format)
        ));
        assert!(matches!(
            recv(&mut &b"0099\nab"[..], 10).await,
            Err(AuthError::Hungup)
        ));
    }
}
