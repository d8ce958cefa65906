//! Parsing an ssl `alg` string (spec/infpk1.md §5.4).

use super::cipher::CipherKind;
use crate::auth::{AuthError, HashAlg};

/// What an `alg` string turns on: a MAC, a cipher, both, or neither (`clear`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslConfig {
    /// The MAC hash, if any.
    pub mac: Option<HashAlg>,
    /// The cipher, if any.
    pub cipher: Option<CipherKind>,
}

impl SslConfig {
    /// Parses an algorithm string as devssl's `alg` control does: tokens split at spaces and
    /// `/`; the last hash and the last cipher win; `clear` alone means framing only; unknown
    /// names (including `none` inside a list) are refused.
    pub fn parse(alg: &str) -> Result<Self, AuthError> {
        if alg == "clear" {
            return Ok(SslConfig {
                mac: None,
                cipher: None,
            });
        }
        let mut cfg = SslConfig {
            mac: None,
            cipher: None,
        };
        let mut any = false;
        for tok in alg.split([' ', '/']).filter(|t| !t.is_empty()) {
            if let Some(h) = HashAlg::from_name(tok) {
                cfg.mac = Some(h);
            } else if let Some(c) = CipherKind::from_name(tok) {
                cfg.cipher = Some(c);
            } else {
                return Err(AuthError::UnknownAlg(tok.to_string()));
            }
            any = true;
        }
        if !any {
            return Err(AuthError::UnknownAlg(alg.to_string()));
        }
        Ok(cfg)
    }

    /// The MAC length (0 without a MAC).
    pub fn diglen(&self) -> usize {
        self.mac.map_or(0, HashAlg::output_len)
    }

    /// The cipher block length (1 without a cipher or with RC4).
    pub fn block_len(&self) -> usize {
        self.cipher.map_or(1, CipherKind::block_len)
    }
}

/// The canonical algorithm string: the hash, then the cipher, space-separated; `clear` for
/// framing only. [`SslConfig::parse`] reads it back to the same configuration.
impl std::fmt::Display for SslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.mac, self.cipher) {
            (None, None) => f.write_str("clear"),
            (Some(h), None) => f.write_str(h.name()),
            (None, Some(c)) => f.write_str(c.name()),
            (Some(h), Some(c)) => write!(f, "{} {}", h.name(), c.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let c = SslConfig::parse("md5 des_56_cbc").unwrap();
        assert_eq!(c.mac, Some(HashAlg::Md5));
        assert_eq!(c.block_len(), 8);
        let c = SslConfig::parse("sha1/rc4_256").unwrap();
        assert_eq!(c.diglen(), 20);
        assert_eq!(c.cipher, Some(CipherKind::Rc4 { key_len: 256 }));
        let c = SslConfig::parse("md5 sha").unwrap();
        assert_eq!(c.mac, Some(HashAlg::Sha1));
        assert!(SslConfig::parse("none sha1").is_err());
        assert!(SslConfig::parse("clear sha1").is_err());
        assert!(SslConfig::parse("").is_err());
        assert!(SslConfig::parse("aes").is_err());
        assert_eq!(SslConfig::parse("clear").unwrap().diglen(), 0);
    }

    #[test]
    fn display_reads_back() {
        for alg in [
            "clear",
            "sha1",
            "md5 rc4_40",
            "sha/rc4",
            "des_40_ecb",
            "md4 ideacbc",
        ] {
            let c = SslConfig::parse(alg).unwrap();
            assert_eq!(SslConfig::parse(&c.to_string()).unwrap(), c, "{alg}");
        }
        assert_eq!(
            SslConfig::parse("sha/rc4").unwrap().to_string(),
            "sha1 rc4_40"
        );
    }
}
