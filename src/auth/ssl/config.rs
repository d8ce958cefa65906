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
}
