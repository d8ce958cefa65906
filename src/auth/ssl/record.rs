//! One direction of the record layer (spec/infpk1.md §6.2–§6.7): [`Sealer`] makes records,
//! [`Opener`] checks and unpacks them.

use super::cipher::CipherState;
use super::config::SslConfig;
use crate::auth::{AuthError, HashAlg, random};

/// Largest body of a 2-byte-header record.
const MAX_L2: usize = 32767;
/// Largest padded body a Rust sender uses (§6.6: a multiple of 8 within 14 bits).
const MAX_PADDED: usize = 16376;

/// State shared by both ends of one direction.
struct Dir {
    secret: Vec<u8>,
    seq: u32,
    mac: Option<HashAlg>,
    cipher: Option<CipherState>,
    block: usize,
}

impl Dir {
    fn new(cfg: &SslConfig, secret: &[u8]) -> Result<Self, AuthError> {
        let cipher = match cfg.cipher {
            Some(k) => Some(CipherState::new(k, secret)?),
            None => None,
        };
        Ok(Dir {
            secret: secret.to_vec(),
            seq: 0,
            mac: cfg.mac,
            cipher,
            block: cfg.block_len(),
        })
    }

    fn diglen(&self) -> usize {
        self.mac.map_or(0, HashAlg::output_len)
    }

    /// `H(secret ‖ data ‖ pad ‖ seq)` (§6.3).
    fn mac(&self, h: HashAlg, covered: &[u8]) -> Vec<u8> {
        h.digest(&[&self.secret, covered, &self.seq.to_be_bytes()])
    }
}

impl Drop for Dir {
    // The secret should not linger in freed memory.
    fn drop(&mut self) {
        self.secret.iter_mut().for_each(|b| *b = 0);
    }
}

/// The sending half of one direction.
pub struct Sealer(Dir);

impl Sealer {
    /// A sender for `cfg` keyed with `secret`, starting at sequence number 0.
    pub fn new(cfg: &SslConfig, secret: &[u8]) -> Result<Self, AuthError> {
        Dir::new(cfg, secret).map(Sealer)
    }

    /// How many of `len` pending data bytes the next record carries (§6.6's safe rule:
    /// padded records stay within 16376 bytes, unpadded ones within 15 bits).
    pub fn next_chunk(&self, len: usize) -> usize {
        let d = self.0.diglen();
        if self.0.block <= 1 {
            return len.min(MAX_L2 - d);
        }
        if len + d <= MAX_PADDED || ((len + d).is_multiple_of(8) && len + d <= MAX_L2 / 8 * 8) {
            return len;
        }
        (len + d).min(MAX_L2 / 8 * 8) / 8 * 8 - d
    }

    /// Appends one record carrying all of `data` to `out`. `data` must be non-empty and no
    /// longer than [`Sealer::next_chunk`] allows.
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), AuthError> {
        let d = self.0.diglen();
        let pad = if self.0.block > 1 && !(data.len() + d).is_multiple_of(8) {
            8 - (data.len() + d) % 8
        } else {
            0
        };
        let len = d + data.len() + pad;
        if data.is_empty() || len > if pad > 0 { MAX_PADDED } else { MAX_L2 } {
            return Err(AuthError::Record("bad ssl record length"));
        }
        let mut body = vec![0u8; len];
        {
            let rest = body.get_mut(d..).unwrap_or_default();
            let (datapart, padpart) = rest.split_at_mut(data.len());
            datapart.copy_from_slice(data);
            if !padpart.is_empty() {
                random::fill(padpart)?;
            }
        }
        if let Some(h) = self.0.mac {
            let mac = self.0.mac(h, rest_of(&body, d));
            if let Some(m) = body.get_mut(..d) {
                m.copy_from_slice(&mac);
            }
        }
        if let Some(c) = &mut self.0.cipher {
            c.encrypt(&mut body);
        }
        if pad == 0 {
            out.extend_from_slice(&[0x80 | (len >> 8) as u8, len as u8]);
        } else {
            out.extend_from_slice(&[((len >> 8) & 0x3f) as u8, len as u8, pad as u8]);
        }
        out.extend_from_slice(&body);
        self.0.seq = self.0.seq.wrapping_add(1);
        Ok(())
    }
}

/// `body[from..]`, or nothing.
fn rest_of(body: &[u8], from: usize) -> &[u8] {
    body.get(from..).unwrap_or_default()
}

/// Compares two MACs without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// The receiving half of one direction.
pub struct Opener(Dir);

impl Opener {
    /// A receiver for `cfg` keyed with `secret`, starting at sequence number 0.
    pub fn new(cfg: &SslConfig, secret: &[u8]) -> Result<Self, AuthError> {
        Dir::new(cfg, secret).map(Opener)
    }

    /// The total size (header and body) of the record at the front of `buf`, once enough of
    /// its header is there.
    pub fn record_size(buf: &[u8]) -> Option<usize> {
        let b0 = *buf.first()?;
        let b1 = *buf.get(1)?;
        if b0 & 0x80 != 0 {
            Some(2 + ((usize::from(b0 & 0x7f) << 8) | usize::from(b1)))
        } else {
            Some(3 + ((usize::from(b0 & 0x3f) << 8) | usize::from(b1)))
        }
    }

    /// Unpacks the complete record `rec` (header and body, exactly [`Opener::record_size`]
    /// bytes) and returns its data. Any error means the connection must die (§6.7).
    pub fn open(&mut self, rec: &[u8]) -> Result<Vec<u8>, AuthError> {
        let (hlen, pad) = match rec {
            [b0, ..] if b0 & 0x80 != 0 => (2, 0),
            [_, _, pad, ..] => (3, usize::from(*pad)),
            _ => return Err(AuthError::Record("ssl message too short")),
        };
        if Self::record_size(rec) != Some(rec.len()) {
            return Err(AuthError::Record("bad ssl record length"));
        }
        let mut body = rest_of(rec, hlen).to_vec();
        let len = body.len();
        if pad > len {
            return Err(AuthError::Record("bad pad in ssl message"));
        }
        if let Some(c) = &mut self.0.cipher {
            if !len.is_multiple_of(self.0.block) {
                return Err(AuthError::Record(
                    "ssl message not a multiple of the block size",
                ));
            }
            c.decrypt(&mut body);
        }
        let d = self.0.diglen();
        if len < d {
            return Err(AuthError::Record("ssl message too short"));
        }
        if let Some(h) = self.0.mac {
            let want = self.0.mac(h, rest_of(&body, d));
            if !same(body.get(..d).unwrap_or_default(), &want) {
                return Err(AuthError::Record("bad digest"));
            }
        }
        if pad > len - d {
            return Err(AuthError::Record("bad pad in ssl message"));
        }
        self.0.seq = self.0.seq.wrapping_add(1);
        body.truncate(len - pad);
        body.drain(..d);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(s: &str) -> SslConfig {
        SslConfig::parse(s).unwrap()
    }

    #[test]
    fn chunking_rules() {
        let secret = [7u8; 32];
        let s = Sealer::new(&cfg("sha1"), &secret).unwrap();
        assert_eq!(s.next_chunk(100_000), 32747);
        let s = Sealer::new(&cfg("sha1 des_56_cbc"), &secret).unwrap();
        assert_eq!(s.next_chunk(20001), 19996);
        assert_eq!(s.next_chunk(16356), 16356);
        assert_eq!(s.next_chunk(100), 100);
        let s = Sealer::new(&cfg("ideacbc"), &secret).unwrap();
        assert_eq!(s.next_chunk(100_000), 32760);
    }

    #[test]
    fn round_trip_every_size_class() {
        let secret: Vec<u8> = (0..127u8).collect();
        for alg in [
            "clear",
            "md5",
            "sha1 ideacbc",
            "md4 des_40_ecb",
            "rc4_256",
            "des_56_cbc",
        ] {
            let c = cfg(alg);
            let mut s = Sealer::new(&c, &secret).unwrap();
            let mut o = Opener::new(&c, &secret).unwrap();
            for n in [1usize, 7, 8, 19, 16356, 20001, 40000] {
                let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
                let mut off = 0;
                while off < n {
                    let m = s.next_chunk(n - off);
                    let mut rec = Vec::new();
                    s.seal(&data[off..off + m], &mut rec).unwrap();
                    assert_eq!(Opener::record_size(&rec), Some(rec.len()), "{alg} {n}");
                    assert_eq!(o.open(&rec).unwrap(), &data[off..off + m], "{alg} {n}");
                    off += m;
                }
            }
        }
    }
}
