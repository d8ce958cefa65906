//! The infpk1 exchange itself (`Keyring->auth`, spec/infpk1.md §4): symmetric, so client and
//! server both run [`authenticate`].

use super::AuthError;
use super::authinfo::AuthInfo;
use super::bigtext::{decode_dh, encode};
use super::cert::{Certificate, sign, verify};
use super::keys::PublicKey;
use super::keyset::now_secs;
use super::msgio::{MAX_AUTH_MSG, Msg, recv, send, send_error};
use super::random;
use num_bigint::BigUint;
use tokio::io::{AsyncRead, AsyncWrite};

/// What a successful exchange gives.
#[derive(Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The peer's name: the owner of its certified public key.
    pub remote_user: String,
    /// The shared secret `B^r mod p` as minimal big-endian bytes (§4.2 step 16).
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Outcome {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("remote_user", &self.remote_user)
            .field("secret_len", &self.secret.len())
            .finish()
    }
}

/// How the exchange (steps 2–16) failed, which decides how it ends (§4.3).
enum Fail {
    /// A check of ours failed: case (a).
    Local(AuthError),
    /// A read failed or the peer sent an error: case (b).
    Read(AuthError),
}

/// C's `atoi`: optional blanks and sign, then digits; anything else gives 0.
fn atoi(b: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(b);
    let t = s.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = t
        .bytes()
        .take_while(u8::is_ascii_digit)
        .take(18)
        .fold(0i64, |a, d| a * 10 + i64::from(d - b'0'));
    if neg { -v } else { v }
}

/// Reads one data message during steps 2–15; an error message or a failed read is case (b).
async fn read_data<S: AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>, Fail> {
    match recv(s, MAX_AUTH_MSG).await {
        Ok(Msg::Data(d)) => Ok(d),
        Ok(Msg::Error(t)) => Err(Fail::Read(AuthError::Remote(t))),
        Err(e) => Err(Fail::Read(e)),
    }
}

/// Sends during steps 5–13; a failed write ends the exchange without further reads.
async fn write_data<S: AsyncWrite + Unpin>(s: &mut S, payload: &[u8]) -> Result<(), Fail> {
    send(s, payload).await.map_err(Fail::Read)
}

/// Steps 2–16 of §4.2, after our version message went out.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    info: &AuthInfo,
) -> Result<Outcome, Fail> {
    let v = read_data(s).await?;
    if v.len() > 4 || atoi(&v) != 1 {
        return Err(Fail::Local(AuthError::IncompatibleProtocol));
    }
    let p = &info.p;
    if p.bits() < 2 {
        return Err(Fail::Local(AuthError::text("missing diffie hellman mod")));
    }
    let one = BigUint::from(1u32);
    // The group order for exponent blinding: p is prime, so every unit's order divides p − 1.
    let order = p - &one;
    let (r, a) = loop {
        let r = random::bits(p.bits()).map_err(Fail::Local)?;
        let a = super::blind::pow_secret(&info.alpha, &r, &order, p).map_err(Fail::Local)?;
        if a > one {
            break (r, a);
        }
    };
    let a_text = encode(&a);
    write_data(s, a_text.as_bytes()).await?;
    write_data(s, info.cert.to_text().as_bytes()).await?;
    write_data(s, info.mypk.to_text().as_bytes()).await?;

    let b_msg = read_data(s).await?;
    let b = decode_dh(&b_msg).ok_or(Fail::Local(AuthError::ImplausibleParameter))?;
    if b >= *p || b <= one {
        return Err(Fail::Local(AuthError::ImplausibleParameter));
    }
    if b == a {
        return Err(Fail::Local(AuthError::PossibleReplay));
    }
    let cert_msg = read_data(s).await?;
    let peer_cert =
        Certificate::parse(&cert_msg).map_err(|_| Fail::Local(AuthError::BadCertificateSyntax))?;
    let pk_msg = read_data(s).await?;
    let peer_pk = PublicKey::parse(&pk_msg).map_err(|_| Fail::Local(AuthError::BadPublicKey))?;
    // The signer hashed the pk text; check the bytes as received, not a re-encoding.
    if !verify(&info.spk, &peer_cert, &pk_msg) {
        return Err(Fail::Local(AuthError::PkMismatch));
    }
    if peer_cert.expired_at(now_secs()) {
        return Err(Fail::Local(AuthError::CertificateExpired));
    }
    let b_text = encode(&b);
    let mine = sign(
        &info.mysk,
        "sha1",
        0,
        format!("{a_text}{b_text}").as_bytes(),
    )
    .map_err(Fail::Local)?;
    write_data(s, mine.to_text().as_bytes()).await?;
    let alpha_msg = read_data(s).await?;
    let alpha_cert =
        Certificate::parse(&alpha_msg).map_err(|_| Fail::Local(AuthError::AlphaCertSyntax))?;
    if !verify(
        &peer_pk,
        &alpha_cert,
        format!("{b_text}{a_text}").as_bytes(),
    ) {
        return Err(Fail::Local(AuthError::BadCertificate));
    }
    Ok(Outcome {
        remote_user: peer_pk.owner,
        secret: super::blind::pow_secret(&b, &r, &order, p)
            .map_err(Fail::Local)?
            .to_bytes_be(),
    })
}

/// The read loop of §4.3 (a) and (c): discard data until `OK`, an error message or a failure.
/// `Ok(())` means the peer said `OK`.
async fn await_ok<S: AsyncRead + Unpin>(s: &mut S) -> Result<(), AuthError> {
    loop {
        match recv(s, MAX_AUTH_MSG).await {
            Ok(Msg::Data(d)) if d == b"OK" => return Ok(()),
            Ok(Msg::Data(_)) => continue,
            Ok(Msg::Error(t)) if t.len() > 1 => return Err(AuthError::Remote(t)),
            Ok(Msg::Error(_)) | Err(_) => return Err(AuthError::Format),
        }
    }
}

/// Runs infpk1 (§4.2, §4.3) on `s` with `info`, in either role. On success the stream is
/// positioned just after the peer's `OK`: nothing beyond it has been read.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    info: &AuthInfo,
) -> Result<Outcome, AuthError> {
    send(s, b"1").await?;
    match exchange(s, info).await {
        Ok(out) => {
            send(s, b"OK").await?;
            await_ok(s).await?;
            Ok(out)
        }
        Err(Fail::Local(e)) => {
            // Our peer learns why; then wait for its verdict so both sides stop together.
            let _ = send_error(s, &format!("remote: {e}")).await;
            let _ = await_ok(s).await;
            Err(e)
        }
        Err(Fail::Read(e)) => {
            let _ = send_error(s, "remote: missing your authentication data").await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::atoi;

    #[test]
    fn c_atoi() {
        assert_eq!(atoi(b"1"), 1);
        assert_eq!(atoi(b" 1x"), 1);
        assert_eq!(atoi(b"2"), 2);
        assert_eq!(atoi(b"x1"), 0);
        assert_eq!(atoi(b"-1"), -1);
    }
}
