//! Making keys Inferno accepts (spec/infpk1.md §3.6): signer keys like `auth/createsignerkey`,
//! user keys like `auth/mkauthinfo`, with RSA as libsec's `rsagen` and ElGamal as `eggen`.

pub use super::expiry::{signer_expiry, user_expiry};
pub use super::prime::{gen_prime, gen_safe_prime};

use super::cert::sign;
use super::keys::{PkAlg, SecretKey, SkAlg};
use super::prime::{ROUNDS, miller_rabin, no_small_factor, search_prime, small_primes};
use super::{AuthError, AuthInfo, random};
use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};

/// Diffie–Hellman parameters `(alpha, p)` as Inferno's `dhparams` makes them: for 1024 bits
/// a DSA-style prime p with alpha = the 160-bit prime q dividing p−1; otherwise a safe prime
/// and a generator.
pub fn dh_params(bits: u64) -> Result<(BigUint, BigUint), AuthError> {
    if bits != 1024 {
        let (p, g) = gen_safe_prime(bits)?;
        return Ok((g, p));
    }
    let q = gen_prime(160)?;
    let q2 = &q << 1;
    let primes = small_primes();
    loop {
        let mut x = random::bits(1024)?;
        x.set_bit(1023, true);
        // p ≡ 1 (mod 2q)
        let r: BigUint = &x % &q2;
        let p: BigUint = x - r + 1u32;
        if p.bits() == 1024
            && no_small_factor(&p, &primes)
            && miller_rabin(&p, 1)?
            && miller_rabin(&p, ROUNDS)?
        {
            return Ok((q, p));
        }
    }
}

/// An RSA secret key like libsec's `rsagen(nlen, elen)`: primes of nlen/2 and the rest of the
/// bits (n may come out one bit longer), and a random elen-bit e ≥ 3 raised until it is
/// coprime with φ.
pub fn rsa_key(owner: &str, nlen: u64, elen: u64) -> Result<SecretKey, AuthError> {
    if !(32..=4096).contains(&nlen) || elen < 2 || elen > nlen / 2 {
        return Err(AuthError::KeyGen(
            "modulus must be in the range of 32 to 4096 bits".into(),
        ));
    }
    let one = BigUint::one();
    let (p, q) = loop {
        let p = search_prime(nlen / 2, false)?;
        let q = search_prime(nlen - p.bits() + 1, false)?;
        if p != q {
            break (p, q);
        }
    };
    let n = &p * &q;
    let phi = (&p - &one) * (&q - &one);
    let mut e = random::bits(elen)?;
    if e <= BigUint::from(2u32) {
        e = BigUint::from(3u32);
    }
    while !e.gcd(&phi).is_one() {
        e += 1u32;
    }
    let d = e
        .modinv(&phi)
        .ok_or_else(|| AuthError::KeyGen("no rsa inverse".into()))?;
    let c2 = p
        .modinv(&q)
        .ok_or_else(|| AuthError::KeyGen("no rsa crt inverse".into()))?;
    Ok(SecretKey {
        owner: owner.to_string(),
        alg: SkAlg::Rsa {
            kp: &d % (&p - &one),
            kq: &d % (&q - &one),
            n,
            ek: e,
            dk: d,
            p,
            q,
            c2,
        },
    })
}

/// An ElGamal secret key over the group `(p, alpha)`: a random secret of bits(p)−1 bits.
pub fn elgamal_key_in(owner: &str, p: &BigUint, alpha: &BigUint) -> Result<SecretKey, AuthError> {
    if p.bits() < 16 {
        return Err(AuthError::KeyGen("elgamal modulus too small".into()));
    }
    let secret = loop {
        let s = random::bits(p.bits() - 1)?;
        if !s.is_zero() {
            break s;
        }
    };
    Ok(SecretKey {
        owner: owner.to_string(),
        alg: SkAlg::ElGamal {
            key: super::blind::pow_secret(alpha, &secret, &(p - 1u32), p)?,
            p: p.clone(),
            alpha: alpha.clone(),
            secret,
        },
    })
}

/// A new secret key "like" `pk` (`genSKfromPK`): RSA of the same sizes, or ElGamal in the
/// same group.
pub fn key_like(owner: &str, pk: &PkAlg) -> Result<SecretKey, AuthError> {
    match pk {
        PkAlg::Rsa { n, ek } => rsa_key(owner, n.bits(), ek.bits().max(2)),
        PkAlg::ElGamal { p, alpha, .. } => elgamal_key_in(owner, p, alpha),
    }
}

/// Key algorithms the tools make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// RSA (the default).
    Rsa,
    /// ElGamal.
    ElGamal,
}

/// A signer key file like `auth/createsignerkey -a alg -b bits name`: a self-signed
/// certificate (sha1, expiry `exp`), spk = its own pk, and 1024-bit DH parameters.
pub fn create_signer(name: &str, alg: KeyAlg, bits: u64, exp: u32) -> Result<AuthInfo, AuthError> {
    if !(32..=4096).contains(&bits) {
        return Err(AuthError::KeyGen(
            "modulus must be in the range of 32 to 4096 bits".into(),
        ));
    }
    let sk = match alg {
        // Signer keys get a 6-bit random public exponent.
        KeyAlg::Rsa => rsa_key(name, bits, 6)?,
        KeyAlg::ElGamal => {
            let (p, g) = gen_safe_prime(bits)?;
            elgamal_key_in(name, &p, &g)?
        }
    };
    let pk = sk.public();
    let cert = sign(&sk, "sha1", exp, pk.to_text().as_bytes())?;
    let (alpha, p) = dh_params(1024)?;
    Ok(AuthInfo::new(pk, cert, sk, alpha, p))
}

/// A user key file like `auth/mkauthinfo -k signerfile user`: a new key like the signer's,
/// certified by it (sha1, expiry `exp`), with the signer's DH parameters.
pub fn issue(signer: &AuthInfo, user: &str, exp: u32) -> Result<AuthInfo, AuthError> {
    let sk = key_like(user, &signer.spk.alg)?;
    let cert = sign(&signer.mysk, "sha1", exp, sk.public().to_text().as_bytes())?;
    Ok(AuthInfo::new(
        signer.mypk.clone(),
        cert,
        sk,
        signer.alpha.clone(),
        signer.p.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::verify;

    #[test]
    fn small_rsa_and_elgamal_keys_sign() {
        let sk = rsa_key("u", 256, 6).unwrap();
        let pk = sk.public();
        let c = sign(&sk, "sha1", 0, b"hello").unwrap();
        assert!(verify(&pk, &c, b"hello"));
        assert!(!verify(&pk, &c, b"hellO"));
        let (p, g) = gen_safe_prime(128).unwrap();
        let sk = elgamal_key_in("e", &p, &g).unwrap();
        let c = sign(&sk, "md5", 7, b"x").unwrap();
        assert!(verify(&sk.public(), &c, b"x"));
        assert!(!verify(&sk.public(), &c, b"y"));
    }
}
