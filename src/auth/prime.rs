//! Probable primes for key generation: a small-prime sieve, Miller–Rabin with random bases,
//! ordinary and safe primes (libsec's `genprime`, `gensafeprime`).

use super::{AuthError, random};
use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};

/// Odd primes below 2000, for sieving candidates before Miller–Rabin.
pub(crate) fn small_primes() -> Vec<u32> {
    (3u32..2000)
        .step_by(2)
        .filter(|&n| {
            (3..)
                .step_by(2)
                .take_while(|d| d * d <= n)
                .all(|d| n % d != 0)
        })
        .collect()
}

/// Miller–Rabin with `rounds` random bases (after a sieve by the caller).
pub(crate) fn miller_rabin(n: &BigUint, rounds: usize) -> Result<bool, AuthError> {
    let one = BigUint::one();
    let two = BigUint::from(2u32);
    if *n < BigUint::from(5u32) {
        return Ok(*n == two || *n == BigUint::from(3u32));
    }
    if n.is_even() {
        return Ok(false);
    }
    let nm1 = n - &one;
    let s = nm1.trailing_zeros().unwrap_or(0);
    let d = &nm1 >> s;
    'outer: for _ in 0..rounds {
        let a = random::range(&two, &nm1)?;
        let mut x = a.modpow(&d, n);
        if x == one || x == nm1 {
            continue;
        }
        for _ in 1..s {
            x = x.modpow(&two, n);
            if x == nm1 {
                continue 'outer;
            }
        }
        return Ok(false);
    }
    Ok(true)
}

/// True when no prime of the sieve divides `n` (`n` larger than all of them).
pub(crate) fn no_small_factor(n: &BigUint, primes: &[u32]) -> bool {
    primes.iter().all(|&p| !(n % p).is_zero())
}

/// Rounds of Miller–Rabin for generated primes (error below 2^-80).
pub(crate) const ROUNDS: usize = 40;

/// Searches upward from a random odd `bits`-bit start for a prime; with `safe`, for a
/// prime q such that 2q+1 is prime too.
pub(crate) fn search_prime(bits: u64, safe: bool) -> Result<BigUint, AuthError> {
    if bits < 3 {
        return Err(AuthError::KeyGen("prime too small".into()));
    }
    let primes = small_primes();
    loop {
        let mut start = random::bits(bits)?;
        start.set_bit(bits - 1, true);
        start.set_bit(0, true);
        let residues: Vec<u32> = primes
            .iter()
            .map(|&p| (&start % p).try_into().unwrap_or(0u32))
            .collect();
        for delta in (0u32..20000).step_by(2) {
            let sieved = primes.iter().zip(&residues).all(|(&p, &r)| {
                let v = (u64::from(r) + u64::from(delta)) % u64::from(p);
                v != 0 && (!safe || (2 * v + 1) % u64::from(p) != 0)
            });
            if !sieved {
                continue;
            }
            let cand = &start + delta;
            if cand.bits() != bits {
                break;
            }
            // Tiny values sit inside the sieve's own range; test them plainly.
            if !miller_rabin(&cand, 1)? {
                continue;
            }
            if safe {
                let p = (&cand << 1) + 1u32;
                if miller_rabin(&p, ROUNDS)? && miller_rabin(&cand, ROUNDS)? {
                    return Ok(cand);
                }
            } else if miller_rabin(&cand, ROUNDS)? {
                return Ok(cand);
            }
        }
    }
}

/// A probable prime of exactly `bits` bits.
pub fn gen_prime(bits: u64) -> Result<BigUint, AuthError> {
    if bits < 16 {
        return Err(AuthError::KeyGen("prime too small".into()));
    }
    search_prime(bits, false)
}

/// A safe prime p = 2q+1 of `bits` bits and a generator of the whole group (`gensafeprime`).
pub fn gen_safe_prime(bits: u64) -> Result<(BigUint, BigUint), AuthError> {
    if bits < 16 {
        return Err(AuthError::KeyGen("prime too small".into()));
    }
    let q = search_prime(bits - 1, true)?;
    let p = (&q << 1) + 1u32;
    let one = BigUint::one();
    let two = BigUint::from(2u32);
    let pm1 = &p - &one;
    loop {
        let g = random::range(&two, &pm1)?;
        if g.modpow(&two, &p) != one && g.modpow(&q, &p) != one {
            return Ok((p, g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        let p = gen_prime(64).unwrap();
        assert_eq!(p.bits(), 64);
        assert!(miller_rabin(&p, 20).unwrap());
        assert!(!miller_rabin(&BigUint::from(561u32), 20).unwrap());
        let (p, g) = gen_safe_prime(64).unwrap();
        assert!(miller_rabin(&((&p - 1u32) >> 1), 20).unwrap());
        assert!(g > BigUint::one() && g < p);
    }
}
