//! Exponentiations with a secret exponent, blinded so that their running time tells an observer
//! nothing about the secret (spec/infpk1.md §4.9). The results are exactly the plain ones, so
//! the wire stays Inferno's.
//!
//! `num-bigint`'s `modpow` takes time that depends on its operands. A server that signs on every
//! connection (RSA or ElGamal, over values a client chose) and raises a fixed generator to its
//! Diffie-Hellman secret is a timing oracle unless those operations are blinded:
//!
//! * RSA signing blinds the base: `s = (m·rᵉ)ᵈ · r⁻¹ mod n` for a fresh random `r`, the standard
//!   countermeasure (OpenSSL's): the exponentiation never sees the value the attacker chose.
//! * A power `gˣ` in a group where `g^order = 1` (Diffie-Hellman, ElGamal's `αᵏ`, ElGamal key
//!   generation) blinds the exponent: `g^(x + t·order)` for a fresh random 64-bit `t`, so the
//!   exponent's bits differ on every call.

use super::{AuthError, random};
use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::One;

/// `m^d mod n`, the RSA private operation, with base blinding (`e` is the public exponent).
pub fn rsa_private(
    m: &BigUint,
    d: &BigUint,
    e: &BigUint,
    n: &BigUint,
) -> Result<BigUint, AuthError> {
    let one = BigUint::one();
    if *n <= BigUint::from(3u32) {
        return Ok(m.modpow(d, n));
    }
    let (r, rinv) = loop {
        let r = random::range(&BigUint::from(2u32), n)?;
        if r.gcd(n).is_one()
            && let Some(rinv) = r.modinv(n)
        {
            break (r, rinv);
        }
    };
    let blinded = (m * r.modpow(e, n)) % n;
    let s = blinded.modpow(d, n);
    let out = (s * rinv) % n;
    debug_assert!(out < *n || *n == one);
    Ok(out)
}

/// `g^x mod p` where `g^order ≡ 1 (mod p)` (for a prime `p`, `order` may be `p − 1`), with
/// exponent blinding.
pub fn pow_secret(
    g: &BigUint,
    x: &BigUint,
    order: &BigUint,
    p: &BigUint,
) -> Result<BigUint, AuthError> {
    let t = random::bits(64)?;
    Ok(g.modpow(&(x + t * order), p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blinded_powers_equal_plain_ones() {
        // RSA with p = 61, q = 53: n = 3233, e = 17, d = 2753.
        let (n, e, d) = (
            BigUint::from(3233u32),
            BigUint::from(17u32),
            BigUint::from(2753u32),
        );
        for m in [0u32, 1, 2, 65, 3232, 5000] {
            let m = BigUint::from(m);
            assert_eq!(
                rsa_private(&m, &d, &e, &n).unwrap(),
                m.modpow(&d, &n),
                "{m}"
            );
        }
        // The group of the integers mod the prime 1019.
        let p = BigUint::from(1019u32);
        let order = &p - 1u32;
        for (g, x) in [(2u32, 0u32), (2, 1), (3, 500), (1018, 77), (5, 1017)] {
            let (g, x) = (BigUint::from(g), BigUint::from(x));
            assert_eq!(pow_secret(&g, &x, &order, &p).unwrap(), g.modpow(&x, &p));
        }
    }

    /// The keys Inferno made (spec/vectors/keys): blinded powers equal the plain ones.
    #[test]
    fn blinded_powers_equal_plain_ones_on_inferno_keys() {
        use crate::auth::AuthInfo;
        use crate::auth::keys::SkAlg;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/vectors/keys/set2");
        for name in ["srvbob", "alice", "egalice", "egbob"] {
            let info = AuthInfo::read(&dir.join(name)).unwrap();
            for seed in 1u32..=8 {
                let m = BigUint::from(seed).pow(97) + BigUint::from(12_345u32);
                match &info.mysk.alg {
                    SkAlg::Rsa { n, ek, dk, .. } => {
                        let m = &m % n;
                        assert_eq!(
                            rsa_private(&m, dk, ek, n).unwrap(),
                            m.modpow(dk, n),
                            "{name}"
                        );
                    }
                    SkAlg::ElGamal {
                        p, alpha, secret, ..
                    } => {
                        let order = p - 1u32;
                        assert_eq!(
                            pow_secret(alpha, secret, &order, p).unwrap(),
                            alpha.modpow(secret, p),
                            "{name}"
                        );
                        let x = &m % &order;
                        assert_eq!(
                            pow_secret(&info.alpha, &x, &(&info.p - 1u32), &info.p).unwrap(),
                            info.alpha.modpow(&x, &info.p),
                            "{name} dh"
                        );
                    }
                }
            }
        }
    }
}
