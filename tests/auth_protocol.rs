//! infpk1 end to end: our client against our server over in-memory pipes and loopback TCP,
//! with the Inferno-made vector keys, every algorithm name and the failure cases.

use registries::auth::ssl::{SslConfig, SslStream};
use registries::auth::{AuthError, AuthInfo, DEFAULT_SERVER_ALGS, client, keygen, server};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, duplex};

/// Only a guard against hangs; no test depends on speed.
const LIMIT: Duration = Duration::from_secs(300);

fn key(name: &str) -> AuthInfo {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("spec/vectors/keys")
        .join(name);
    AuthInfo::read(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
}

type Side<S> = Result<(registries::auth::Authenticated<S>, String), AuthError>;

/// Runs both roles against each other over an in-memory pipe.
async fn pair(
    c: &AuthInfo,
    s: &AuthInfo,
    alg: &str,
    algs: &[&str],
) -> (Side<tokio::io::DuplexStream>, Side<tokio::io::DuplexStream>) {
    let (a, b) = duplex(1 << 16);
    tokio::time::timeout(LIMIT, async {
        tokio::join!(client(a, alg, c), server(b, algs, s))
    })
    .await
    .expect("auth hung")
}

/// Sends data both ways, including a write larger than one record.
async fn exchange<A, B>(mut a: A, mut b: B, tag: &str)
where
    A: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let big: Vec<u8> = (0..40_001u32).map(|i| (i * 7 + 3) as u8).collect();
    let big2 = big.clone();
    let writer = tokio::spawn(async move {
        a.write_all(b"Tversion").await.unwrap();
        a.write_all(&big2).await.unwrap();
        a.flush().await.unwrap();
        let mut back = vec![0u8; 19];
        a.read_exact(&mut back).await.unwrap();
        back
    });
    let mut got = vec![0u8; 8 + big.len()];
    tokio::time::timeout(LIMIT, b.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got[..8], b"Tversion", "{tag}");
    assert!(got[8..] == big[..], "{tag}: data differs");
    b.write_all(b"hello from inferno\n").await.unwrap();
    b.flush().await.unwrap();
    let back = tokio::time::timeout(LIMIT, writer).await.unwrap().unwrap();
    assert_eq!(back, b"hello from inferno\n", "{tag}");
}

/// Every name of §5.4 plus combinations written with spaces and slashes.
const ALGS: &[&str] = &[
    "none",
    "clear",
    "sha1",
    "sha",
    "md5",
    "md4",
    "rc4",
    "rc4_40",
    "rc4_128",
    "rc4_256",
    "des_56_cbc",
    "descbc",
    "des_56_ecb",
    "desecb",
    "des_40_cbc",
    "des_40_ecb",
    "ideacbc",
    "ideaecb",
    "sha1/rc4_256",
    "md5 des_56_cbc",
    "sha1 ideacbc",
    "md4/des_40_ecb",
    "sha rc4_128",
    "md5/ideaecb",
    "sha1 des_56_ecb",
    "rc4_256 sha1",
    "sha1 des_40_cbc",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_set2_alice_to_srvbob() {
    let (alice, srvbob) = (key("set2/alice"), key("set2/srvbob"));
    for alg in ALGS {
        let algs: &[&str] = if *alg == "clear" {
            &["clear"]
        } else {
            DEFAULT_SERVER_ALGS
        };
        let (c, s) = pair(&alice, &srvbob, alg, algs).await;
        let (cs, cname) = c.unwrap_or_else(|e| panic!("{alg}: client: {e}"));
        let (ss, sname) = s.unwrap_or_else(|e| panic!("{alg}: server: {e}"));
        assert_eq!(cname, "srvbob");
        assert_eq!(sname, "alice");
        assert_eq!(cs.is_ssl(), *alg != "none", "{alg}");
        exchange(cs, ss, alg).await;
    }
}

#[tokio::test]
async fn set1_alice_and_bob_to_server_over_tcp() {
    let server_key = Arc::new(key("set1/server.keyfile"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sk = server_key.clone();
    let srv = tokio::spawn(async move {
        let mut names = Vec::new();
        for _ in 0..3 {
            let (conn, _) = listener.accept().await.unwrap();
            let (mut s, who) = server(conn, DEFAULT_SERVER_ALGS, &sk).await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
            s.flush().await.unwrap();
            names.push(who);
        }
        names
    });
    for (k, alg) in [
        ("set1/alice.keyfile", "none"),
        ("set1/bob.keyfile", "sha1"),
        ("set1/alice.keyfile", "rc4_256 sha1"),
    ] {
        let conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut c, who) = client(conn, alg, &key(k)).await.unwrap();
        assert_eq!(who, "server");
        c.write_all(b"ping").await.unwrap();
        c.flush().await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }
    let names = tokio::time::timeout(LIMIT, srv).await.unwrap().unwrap();
    assert_eq!(names, ["alice", "bob", "alice"]);
}

#[tokio::test]
async fn elgamal_keys_authenticate() {
    let (a, b) = (key("set2/egalice"), key("set2/egbob"));
    for alg in ["none", "sha1/rc4_256", "md5 ideacbc"] {
        let (c, s) = pair(&a, &b, alg, DEFAULT_SERVER_ALGS).await;
        let (cs, cname) = c.unwrap();
        let (ss, sname) = s.unwrap();
        assert_eq!((cname.as_str(), sname.as_str()), ("egbob", "egalice"));
        exchange(cs, ss, alg).await;
    }
}

/// The same key moved into another key's Diffie–Hellman group, so that only the signer
/// differs and the outcome does not depend on which modulus is larger.
fn in_group_of(k: &AuthInfo, group: &AuthInfo) -> AuthInfo {
    let mut k = k.clone();
    k.alpha = group.alpha.clone();
    k.p = group.p.clone();
    k
}

/// How Inferno refuses a key of another signer: at the certificate check, or, when the two
/// key files' DH moduli differ, possibly earlier at the parameter check (either side).
fn refused(e: &str) -> bool {
    let e = e.strip_prefix("remote: ").unwrap_or(e);
    [
        "pk doesn't match certificate",
        "implausible parameter value",
    ]
    .contains(&e)
}

#[tokio::test]
async fn wrong_signer_is_refused_with_infernos_message() {
    for (c, s) in [
        ("set1/mallory.keyfile", "set1/server.keyfile"),
        ("set1/fakealice.keyfile", "set1/server.keyfile"),
        ("set2/mallory", "set2/srvbob"),
    ] {
        let (ck, sk) = (key(c), key(s));
        let (cr, sr) = pair(&in_group_of(&ck, &sk), &sk, "sha1", DEFAULT_SERVER_ALGS).await;
        assert_eq!(
            sr.err().unwrap().to_string(),
            "pk doesn't match certificate",
            "{c}"
        );
        assert_eq!(
            cr.err().unwrap().to_string(),
            "pk doesn't match certificate",
            "{c}"
        );
        // The key files as Inferno wrote them, each in its own signer's group.
        let (cr, sr) = pair(&ck, &sk, "sha1", DEFAULT_SERVER_ALGS).await;
        let (ce, se) = (cr.err().unwrap().to_string(), sr.err().unwrap().to_string());
        assert!(refused(&ce) && refused(&se), "{c}: {ce} / {se}");
    }
}

#[tokio::test]
async fn keys_of_different_signers_and_groups_fail() {
    // egalice's signer and DH group are not srvbob's.
    for _ in 0..4 {
        let (cr, sr) = pair(&key("set2/egalice"), &key("set2/srvbob"), "sha1", &[]).await;
        let (ce, se) = (cr.err().unwrap().to_string(), sr.err().unwrap().to_string());
        assert!(refused(&ce) && refused(&se), "{ce} / {se}");
    }
}

#[tokio::test]
async fn expired_certificate() {
    let signer = key("set2/mysigner.signerkey");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let old = keygen::issue(&signer, "olduser", now - 100).unwrap();
    let (c, s) = pair(&old, &key("set2/srvbob"), "none", DEFAULT_SERVER_ALGS).await;
    assert_eq!(s.err().unwrap().to_string(), "certificate expired");
    assert_eq!(c.err().unwrap().to_string(), "remote: certificate expired");
    // carol's certificate runs to 2030: accepted.
    let (c, s) = pair(&key("set2/carol"), &key("set2/srvbob"), "none", &[]).await;
    assert_eq!(c.unwrap().1, "srvbob");
    assert_eq!(s.unwrap().1, "carol");
}

#[tokio::test]
async fn keys_from_our_tools_authenticate_against_inferno_keys() {
    // A user issued by the Inferno-made signer is accepted by srvbob and accepts it.
    let user = keygen::issue(&key("set2/mysigner.signerkey"), "newbie", 0).unwrap();
    let again = AuthInfo::from_bytes(&user.to_bytes()).unwrap();
    assert_eq!(again, user);
    let (c, s) = pair(
        &again,
        &key("set2/srvbob"),
        "sha1 des_56_cbc",
        DEFAULT_SERVER_ALGS,
    )
    .await;
    let (cs, _) = c.unwrap();
    let (ss, who) = s.unwrap();
    assert_eq!(who, "newbie");
    exchange(cs, ss, "newbie").await;

    // The same for ElGamal.
    let eguser = keygen::issue(&key("set2/egsigner.signerkey"), "egnew", 0).unwrap();
    let (c, s) = pair(
        &key("set2/egbob"),
        &eguser,
        "md5/rc4_128",
        DEFAULT_SERVER_ALGS,
    )
    .await;
    assert_eq!(c.unwrap().1, "egnew");
    assert_eq!(s.unwrap().1, "egbob");
}

#[tokio::test]
async fn a_new_signer_and_its_users() {
    for (alg, bits) in [(keygen::KeyAlg::Rsa, 512), (keygen::KeyAlg::ElGamal, 256)] {
        let signer = keygen::create_signer("newsigner", alg, bits, 0).unwrap();
        assert_eq!(signer.alpha.bits(), 160);
        assert_eq!(signer.p.bits(), 1024);
        assert!(registries::auth::verify(
            &signer.spk,
            &signer.cert,
            signer.mypk.to_text().as_bytes()
        ));
        let u1 = keygen::issue(&signer, "u1", 0).unwrap();
        let u2 = keygen::issue(&signer, "u2", 0).unwrap();
        let (c, s) = pair(&u1, &u2, "sha1/rc4_256", DEFAULT_SERVER_ALGS).await;
        exchange(c.unwrap().0, s.unwrap().0, "new signer").await;
        // A user of another signer is refused.
        let alice = in_group_of(&key("set2/alice"), &u2);
        let (c, _) = pair(&alice, &u2, "none", DEFAULT_SERVER_ALGS).await;
        assert_eq!(c.err().unwrap().to_string(), "pk doesn't match certificate");
    }
}

#[tokio::test]
async fn unsupported_algorithm_is_refused_by_the_server() {
    let (c, s) = pair(
        &key("set2/alice"),
        &key("set2/srvbob"),
        "clear",
        DEFAULT_SERVER_ALGS,
    )
    .await;
    assert_eq!(
        s.err().unwrap().to_string(),
        "unsupported client algorithm: clear"
    );
    // The client has finished its part; its first read sees the connection closed.
    let (mut cs, _) = c.unwrap();
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(LIMIT, cs.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(r, Ok(0) | Err(_)));
    // An unknown name is refused by the client before anything is sent.
    let (a, _b) = duplex(64);
    let e = client(a, "aes", &key("set2/alice")).await.err().unwrap();
    assert!(matches!(e, AuthError::UnknownAlg(_)));
}

#[tokio::test]
async fn bad_version_transcript() {
    let (mut raw, b) = duplex(1 << 16);
    let srv = tokio::spawn(async move {
        server(b, DEFAULT_SERVER_ALGS, &key("set2/srvbob"))
            .await
            .err()
            .unwrap()
    });
    raw.write_all(b"0001\n2").await.unwrap();
    let mut buf = vec![0u8; 6 + 49];
    raw.read_exact(&mut buf).await.unwrap();
    assert_eq!(
        buf,
        b"0001\n1!044\nremote: incompatible authentication protocol"
    );
    drop(raw);
    let e = tokio::time::timeout(LIMIT, srv).await.unwrap().unwrap();
    assert_eq!(e.to_string(), "incompatible authentication protocol");
}

#[tokio::test]
async fn peer_error_message_is_reported() {
    let (mut raw, b) = duplex(1 << 16);
    let srv = tokio::spawn(async move {
        server(b, DEFAULT_SERVER_ALGS, &key("set2/srvbob"))
            .await
            .err()
            .unwrap()
    });
    raw.write_all(b"0001\n1!012\nremote: nope").await.unwrap();
    let e = tokio::time::timeout(LIMIT, srv).await.unwrap().unwrap();
    assert_eq!(e.to_string(), "remote: nope");
    // Before giving up the server said why, in Inferno's words.
    let mut all = Vec::new();
    raw.read_to_end(&mut all).await.unwrap();
    assert!(all.ends_with(b"!040\nremote: missing your authentication data"));
    // A peer that hangs up at once.
    let (raw, b) = duplex(1 << 16);
    drop(raw);
    let e = server(b, DEFAULT_SERVER_ALGS, &key("set2/srvbob"))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, AuthError::Io(_) | AuthError::Hungup), "{e}");
}

/// Forwards bytes both ways; once `armed`, flips one bit of the next client→server chunk.
async fn tampering_relay(
    mut a: tokio::io::DuplexStream,
    mut b: tokio::io::DuplexStream,
    armed: Arc<AtomicBool>,
) {
    let (mut ar, mut aw) = tokio::io::split(&mut a);
    let (mut br, mut bw) = tokio::io::split(&mut b);
    let up = async {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match ar.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if armed.swap(false, Ordering::SeqCst) {
                buf[n - 1] ^= 0x01;
            }
            if bw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = bw.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut br, &mut aw).await;
        let _ = aw.shutdown().await;
    };
    tokio::join!(up, down);
}

#[tokio::test]
async fn tampered_record_kills_the_connection() {
    for alg in ["sha1/rc4_256", "md5 des_56_cbc", "md4 ideaecb"] {
        let (c_end, relay_c) = duplex(1 << 16);
        let (relay_s, s_end) = duplex(1 << 16);
        let armed = Arc::new(AtomicBool::new(false));
        let relay = tokio::spawn(tampering_relay(relay_c, relay_s, armed.clone()));
        let (alice, srvbob) = (key("set2/alice"), key("set2/srvbob"));
        let (c, s) = tokio::join!(
            client(c_end, alg, &alice),
            server(s_end, DEFAULT_SERVER_ALGS, &srvbob)
        );
        let (mut c, _) = c.unwrap();
        let (mut s, _) = s.unwrap();
        // One good record first.
        c.write_all(b"good").await.unwrap();
        c.flush().await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"good");
        armed.store(true, Ordering::SeqCst);
        c.write_all(b"evil!!!!").await.unwrap();
        c.flush().await.unwrap();
        let r = tokio::time::timeout(LIMIT, s.read(&mut buf)).await.unwrap();
        let e = r.expect_err("tampered record accepted");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{alg}");
        // Dead for good: later reads and writes fail too.
        assert!(s.read(&mut buf).await.is_err());
        assert!(s.write_all(b"more").await.is_err());
        drop((c, s));
        relay.abort();
    }
}

#[tokio::test]
async fn a_127_byte_secret_works_with_every_algorithm() {
    let secret: Vec<u8> = (0..127u32).map(|i| (i * 13 + 0x80) as u8).collect();
    for alg in ALGS.iter().filter(|a| **a != "none") {
        let cfg = SslConfig::parse(alg).unwrap();
        let (a, b) = duplex(1 << 16);
        let a = SslStream::new(a, &cfg, &secret).unwrap();
        let b = SslStream::new(b, &cfg, &secret).unwrap();
        exchange(a, b, alg).await;
    }
    // Too short for the block ciphers.
    for alg in ["des_56_cbc", "ideacbc"] {
        let cfg = SslConfig::parse(alg).unwrap();
        let (a, _b) = duplex(64);
        assert_eq!(
            SslStream::new(a, &cfg, &[1u8; 7])
                .err()
                .unwrap()
                .to_string(),
            "secret too short"
        );
    }
}
