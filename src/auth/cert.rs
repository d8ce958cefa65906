//! Certificates: their text (spec/infpk1.md §3.4) and signing and verifying (§3.5).

use super::AuthError;
use super::hash::HashAlg;
use super::keys::{Fields, PkAlg, PublicKey, SecretKey, SkAlg, push_num};
use super::random;
use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::One;

/// The signature numbers of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// RSA: `val = m^dk mod n`.
    Rsa(BigUint),
    /// ElGamal: `(r, s)`.
    ElGamal {
        /// `alpha^k mod p`.
        r: BigUint,
        /// `(m − secret·r)·k⁻¹ mod (p−1)`.
        s: BigUint,
    },
}

impl Signature {
    fn alg(&self) -> &'static str {
        match self {
            Signature::Rsa(_) => "rsa",
            Signature::ElGamal { .. } => "elgamal",
        }
    }
}

/// A certificate: a signature by `signer` over some content, valid until `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Hash name as written (`sha1`, `sha`, `md5` or `md4`).
    pub hashalg: String,
    /// The signer's name (the owner of the signing key).
    pub signer: String,
    /// Expiry in seconds since 1970 UTC; 0 means never.
    pub exp: u32,
    /// The signature.
    pub sig: Signature,
}

impl Certificate {
    /// Parses certificate text (`strtocert`); trailing text is ignored; DSA is refused.
    pub fn parse(text: &[u8]) -> Result<Self, AuthError> {
        let mut f = Fields::new(text, "certificate");
        let sigalg = f.alg()?;
        let hashalg = f.alg()?;
        if HashAlg::from_name(&hashalg).is_none() {
            return Err(AuthError::text(format!(
                "certificate: unknown hash {hashalg:?}"
            )));
        }
        let signer = f.name("signer")?;
        let exp = parse_exp(&f.name("exp")?)?;
        let sig = match sigalg.as_str() {
            "rsa" => Signature::Rsa(f.num("val")?),
            "elgamal" => Signature::ElGamal {
                r: f.num("r")?,
                s: f.num("s")?,
            },
            "dsa" => return Err(AuthError::DsaUnsupported),
            other => {
                return Err(AuthError::text(format!(
                    "certificate: unknown algorithm {other:?}"
                )));
            }
        };
        Ok(Certificate {
            hashalg,
            signer,
            exp,
            sig,
        })
    }

    /// Canonical certificate text (`certtostr`).
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n{}\n",
            self.sig.alg(),
            self.hashalg,
            self.signer,
            self.exp
        );
        match &self.sig {
            Signature::Rsa(v) => push_num(&mut s, v),
            Signature::ElGamal { r, s: ss } => {
                push_num(&mut s, r);
                push_num(&mut s, ss);
            }
        }
        s
    }

    /// True when the certificate has an expiry and it is at or before `now` (auth's rule, §4.2
    /// step 12).
    pub fn expired_at(&self, now: u64) -> bool {
        self.exp != 0 && u64::from(self.exp) <= now
    }
}

/// Parses the expiry field like `strtoul`: leading blanks, then decimal digits.
// Not nom: `strtoul`'s leading blanks and digits.
fn parse_exp(s: &str) -> Result<u32, AuthError> {
    let t = s.trim_start_matches([' ', '\t']);
    let digits = t
        .get(..t.bytes().take_while(u8::is_ascii_digit).count())
        .unwrap_or_default();
    if digits.is_empty() {
        return Err(AuthError::text("bad certificate text: bad exp field"));
    }
    digits
        .parse::<u32>()
        .map_err(|_| AuthError::text("bad certificate text: exp out of range"))
}

/// The signed digest (§3.5): `H(M ‖ signer ‖ " " ‖ decimal(exp))` as an integer.
fn digest(hash: HashAlg, msg: &[u8], signer: &str, exp: u32) -> BigUint {
    let tail = format!("{signer} {exp}");
    BigUint::from_bytes_be(&hash.digest(&[msg, tail.as_bytes()]))
}

/// Signs `msg` with `sk` (signer name = the key's owner), as Keyring's `sign` does.
pub fn sign(sk: &SecretKey, hashalg: &str, exp: u32, msg: &[u8]) -> Result<Certificate, AuthError> {
    let hash = HashAlg::from_name(hashalg)
        .ok_or_else(|| AuthError::text(format!("unknown hash {hashalg:?}")))?;
    let m = digest(hash, msg, &sk.owner, exp);
    let sig = match &sk.alg {
        SkAlg::Rsa { n, ek, dk, .. } => {
            if n.bits() == 0 {
                return Err(AuthError::text("bad sk arg"));
            }
            Signature::Rsa(super::blind::rsa_private(&m, dk, ek, n)?)
        }
        SkAlg::ElGamal {
            p, alpha, secret, ..
        } => {
            let one = BigUint::one();
            if *p <= BigUint::from(3u32) {
                return Err(AuthError::KeyGen("elgamal modulus too small".into()));
            }
            let pm1 = p - &one;
            loop {
                let k = random::range(&one, &pm1)?;
                if !k.gcd(&pm1).is_one() {
                    continue;
                }
                let Some(kinv) = k.modinv(&pm1) else { continue };
                let r = super::blind::pow_secret(alpha, &k, &pm1, p)?;
                // s = (m − secret·r)·k⁻¹ mod (p−1), kept non-negative.
                let sr = (secret * &r) % &pm1;
                let mm = &m % &pm1;
                let diff = (mm + &pm1 - sr) % &pm1;
                let s = (diff * kinv) % &pm1;
                break Signature::ElGamal { r, s };
            }
        }
    };
    Ok(Certificate {
        hashalg: hashalg.to_string(),
        signer: sk.owner.clone(),
        exp,
        sig,
    })
}

/// Verifies that `cert` is `pk`'s signature over `msg` (§3.5). Algorithms must agree.
pub fn verify(pk: &PublicKey, cert: &Certificate, msg: &[u8]) -> bool {
    let Some(hash) = HashAlg::from_name(&cert.hashalg) else {
        return false;
    };
    let m = digest(hash, msg, &cert.signer, cert.exp);
    match (&pk.alg, &cert.sig) {
        (PkAlg::Rsa { n, ek }, Signature::Rsa(val)) => {
            if n.bits() == 0 {
                return false;
            }
            val.modpow(ek, n) == m
        }
        (PkAlg::ElGamal { p, alpha, key }, Signature::ElGamal { r, s }) => {
            if p.bits() == 0 || r.bits() == 0 || r >= p {
                return false;
            }
            let lhs = (key.modpow(r, p) * r.modpow(s, p)) % p;
            // m is used directly as the exponent, not reduced first (§3.5).
            lhs == alpha.modpow(&m, p)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_text_round_trip() {
        let t = "rsa\nsha1\nmysigner\n0\nAQAB\n";
        let c = Certificate::parse(t.as_bytes()).unwrap();
        assert_eq!(c.to_text(), t);
        assert!(Certificate::parse(b"rsa\nsha256\nx\n0\nAQAB\n").is_err());
        assert!(Certificate::parse(b"rsa\nsha1\nx\n\nAQAB\n").is_err());
        assert!(Certificate::parse(b"rsa\nsha1\nx\n99999999999\nAQAB\n").is_err());
    }
}
