//! Random numbers from the OS CSPRNG (through `ring`), as big integers (spec/infpk1.md §4.8).

use super::AuthError;
use num_bigint::BigUint;
use num_traits::Zero;
use ring::rand::{SecureRandom, SystemRandom};

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), AuthError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| AuthError::Io(std::io::Error::other("no random numbers")))
}

/// A uniform random integer of at most `bits` bits.
pub fn bits(bits: u64) -> Result<BigUint, AuthError> {
    if bits == 0 {
        return Ok(BigUint::zero());
    }
    let nbytes =
        usize::try_from(bits.div_ceil(8)).map_err(|_| AuthError::KeyGen("too many bits".into()))?;
    let mut buf = vec![0u8; nbytes];
    fill(&mut buf)?;
    let extra = nbytes as u64 * 8 - bits;
    if let Some(first) = buf.first_mut() {
        *first &= 0xffu8 >> extra;
    }
    Ok(BigUint::from_bytes_be(&buf))
}

/// A uniform random integer in `[lo, hi)`; `hi` must exceed `lo`.
pub fn range(lo: &BigUint, hi: &BigUint) -> Result<BigUint, AuthError> {
    if hi <= lo {
        return Err(AuthError::KeyGen("empty random range".into()));
    }
    let span = hi - lo;
    let b = span.bits();
    loop {
        let v = bits(b)?;
        if v < span {
            return Ok(lo + v);
        }
    }
}
