//! Public and secret keys and their text form (spec/infpk1.md §3.2, §3.3), RSA and ElGamal.

use super::AuthError;
use super::bigtext::{decode_field, encode};
use num_bigint::BigUint;

/// Reads the LF-terminated fields of a key or certificate text (§3.2).
// Hand-written, not nom: the text is LF-ended fields read in a fixed order, each an error with
// Inferno's own message when missing; a cursor says that more directly than a grammar.
pub(crate) struct Fields<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Fields<'a> {
    /// Starts reading `text`; `what` names the object in error messages.
    pub(crate) fn new(text: &'a [u8], what: &'static str) -> Self {
        Fields { rest: text, what }
    }

    fn err(&self, field: &str) -> AuthError {
        AuthError::text(format!("bad {} text: bad {field} field", self.what))
    }

    /// The next line, without its LF; `None` at the end of the text.
    fn line(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let (l, r) = self.rest.split_at(i);
                self.rest = r.get(1..).unwrap_or_default();
                Some(l)
            }
            None => Some(std::mem::take(&mut self.rest)),
        }
    }

    /// A non-empty UTF-8 name field (owner, signer, algorithm).
    pub(crate) fn name(&mut self, field: &str) -> Result<String, AuthError> {
        match self.line() {
            Some(l) if !l.is_empty() => String::from_utf8(l.to_vec()).map_err(|_| self.err(field)),
            _ => Err(self.err(field)),
        }
    }

    /// An algorithm name: shorter than 20 bytes (§3.2).
    pub(crate) fn alg(&mut self) -> Result<String, AuthError> {
        let a = self.name("algorithm")?;
        if a.len() >= 20 {
            return Err(self.err("algorithm"));
        }
        Ok(a)
    }

    /// A big-integer field (§3.1.2).
    pub(crate) fn num(&mut self, field: &str) -> Result<BigUint, AuthError> {
        self.line()
            .and_then(decode_field)
            .ok_or_else(|| self.err(field))
    }
}

/// Appends `v`'s canonical text and an LF.
pub(crate) fn push_num(s: &mut String, v: &BigUint) {
    s.push_str(&encode(v));
    s.push('\n');
}

/// The public part of a key, by algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PkAlg {
    /// RSA: modulus `n` and public exponent `ek`.
    Rsa {
        /// Modulus.
        n: BigUint,
        /// Public exponent.
        ek: BigUint,
    },
    /// ElGamal: prime `p`, base `alpha`, public `key = alpha^secret mod p`.
    ElGamal {
        /// Prime modulus.
        p: BigUint,
        /// Base.
        alpha: BigUint,
        /// Public value.
        key: BigUint,
    },
}

impl PkAlg {
    /// Inferno's name of the algorithm.
    pub fn name(&self) -> &'static str {
        match self {
            PkAlg::Rsa { .. } => "rsa",
            PkAlg::ElGamal { .. } => "elgamal",
        }
    }
}

/// A public key with its owner's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The owner (a non-empty name without LF).
    pub owner: String,
    /// The key material.
    pub alg: PkAlg,
}

impl PublicKey {
    /// Parses public-key text (`strtopk`). Trailing text is ignored; DSA is refused.
    pub fn parse(text: &[u8]) -> Result<Self, AuthError> {
        let mut f = Fields::new(text, "public key");
        let alg = f.alg()?;
        let owner = f.name("owner")?;
        let alg = match alg.as_str() {
            "rsa" => PkAlg::Rsa {
                n: f.num("n")?,
                ek: f.num("ek")?,
            },
            "elgamal" => PkAlg::ElGamal {
                p: f.num("p")?,
                alpha: f.num("alpha")?,
                key: f.num("key")?,
            },
            "dsa" => return Err(AuthError::DsaUnsupported),
            other => return Err(AuthError::text(format!("unknown key algorithm {other:?}"))),
        };
        Ok(PublicKey { owner, alg })
    }

    /// Canonical public-key text (`pktostr`), the exact bytes a certificate signs (§3.3).
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n{}\n", self.alg.name(), self.owner);
        match &self.alg {
            PkAlg::Rsa { n, ek } => {
                push_num(&mut s, n);
                push_num(&mut s, ek);
            }
            PkAlg::ElGamal { p, alpha, key } => {
                push_num(&mut s, p);
                push_num(&mut s, alpha);
                push_num(&mut s, key);
            }
        }
        s
    }
}

/// The private material of a key, by algorithm.
#[derive(Clone, PartialEq, Eq)]
pub enum SkAlg {
    /// RSA with Inferno's CRT fields (`p`, `q` the other way round from PKCS#1, §3.3).
    Rsa {
        /// Modulus.
        n: BigUint,
        /// Public exponent.
        ek: BigUint,
        /// Private exponent.
        dk: BigUint,
        /// First prime.
        p: BigUint,
        /// Second prime.
        q: BigUint,
        /// `dk mod (p−1)`.
        kp: BigUint,
        /// `dk mod (q−1)`.
        kq: BigUint,
        /// `p⁻¹ mod q`.
        c2: BigUint,
    },
    /// ElGamal.
    ElGamal {
        /// Prime modulus.
        p: BigUint,
        /// Base.
        alpha: BigUint,
        /// Public value.
        key: BigUint,
        /// Secret exponent.
        secret: BigUint,
    },
}

impl std::fmt::Debug for SkAlg {
    // Never print private numbers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkAlg::Rsa { .. } => f.write_str("SkAlg::Rsa(..)"),
            SkAlg::ElGamal { .. } => f.write_str("SkAlg::ElGamal(..)"),
        }
    }
}

/// A secret key with its owner's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    /// The owner.
    pub owner: String,
    /// The key material.
    pub alg: SkAlg,
}

impl SecretKey {
    /// Parses secret-key text (`strtosk`). Trailing text is ignored; DSA is refused.
    pub fn parse(text: &[u8]) -> Result<Self, AuthError> {
        let mut f = Fields::new(text, "secret key");
        let alg = f.alg()?;
        let owner = f.name("owner")?;
        let alg = match alg.as_str() {
            "rsa" => SkAlg::Rsa {
                n: f.num("n")?,
                ek: f.num("ek")?,
                dk: f.num("dk")?,
                p: f.num("p")?,
                q: f.num("q")?,
                kp: f.num("kp")?,
                kq: f.num("kq")?,
                c2: f.num("c2")?,
            },
            "elgamal" => SkAlg::ElGamal {
                p: f.num("p")?,
                alpha: f.num("alpha")?,
                key: f.num("key")?,
                secret: f.num("secret")?,
            },
            "dsa" => return Err(AuthError::DsaUnsupported),
            other => return Err(AuthError::text(format!("unknown key algorithm {other:?}"))),
        };
        Ok(SecretKey { owner, alg })
    }

    /// Canonical secret-key text (`sktostr`), all fields in Inferno's order.
    pub fn to_text(&self) -> String {
        let name = match self.alg {
            SkAlg::Rsa { .. } => "rsa",
            SkAlg::ElGamal { .. } => "elgamal",
        };
        let mut s = format!("{name}\n{}\n", self.owner);
        match &self.alg {
            SkAlg::Rsa {
                n,
                ek,
                dk,
                p,
                q,
                kp,
                kq,
                c2,
            } => [n, ek, dk, p, q, kp, kq, c2]
                .iter()
                .for_each(|v| push_num(&mut s, v)),
            SkAlg::ElGamal {
                p,
                alpha,
                key,
                secret,
            } => [p, alpha, key, secret]
                .iter()
                .for_each(|v| push_num(&mut s, v)),
        }
        s
    }

    /// The public part, with the same owner (`sktopk`).
    pub fn public(&self) -> PublicKey {
        let alg = match &self.alg {
            SkAlg::Rsa { n, ek, .. } => PkAlg::Rsa {
                n: n.clone(),
                ek: ek.clone(),
            },
            SkAlg::ElGamal { p, alpha, key, .. } => PkAlg::ElGamal {
                p: p.clone(),
                alpha: alpha.clone(),
                key: key.clone(),
            },
        };
        PublicKey {
            owner: self.owner.clone(),
            alg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_refuse() {
        let pk = PublicKey::parse(b"rsa\nbob\nAQAB\nAw==\ntrailing junk").unwrap();
        assert_eq!(pk.owner, "bob");
        assert_eq!(pk.to_text(), "rsa\nbob\nAQAB\nAw==\n");
        assert!(matches!(
            PublicKey::parse(b"dsa\nx\nAQ==\nAQ==\nAQ==\nAQ==\n"),
            Err(AuthError::DsaUnsupported)
        ));
        assert!(PublicKey::parse(b"rsa\n\nAQAB\nAw==\n").is_err());
        assert!(PublicKey::parse(b"rsa\nbob\nAQAB\n\n").is_err());
        assert!(PublicKey::parse(b"rsa\nbob\nAQAB").is_err());
        assert!(PublicKey::parse(b"rsax\nbob\nAQAB\nAw==\n").is_err());
        assert!(SecretKey::parse(b"elgamal\nbob\nAQ==\nAQ==\nAQ==\n").is_err());
    }
}
