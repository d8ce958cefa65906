//! `cargo bench --bench auth`: prints infpk1 and ssl record-layer figures.
//!
//! * full infpk1 handshakes per second (client and server in one process, so each handshake
//!   costs both sides' work), with the Inferno-made RSA-1024 and ElGamal-512 vector keys;
//! * ssl stream throughput over an in-memory pipe for several algorithms, in 8 KiB writes
//!   (one 9P message of Inferno's msize is about this size);
//! * key generation time for `registry key signer` (RSA-1024) and `issue`.

use registries::auth::ssl::{SslConfig, SslStream};
use registries::auth::{AuthInfo, DEFAULT_SERVER_ALGS, client, keygen, server};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

const RUN: Duration = Duration::from_secs(2);

fn key(name: &str) -> AuthInfo {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("spec/vectors/keys")
        .join(name);
    AuthInfo::read(&p).expect("vector key")
}

async fn handshakes(c: &AuthInfo, s: &AuthInfo, label: &str) {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < RUN {
        let (a, b) = duplex(1 << 16);
        let (cr, sr) = tokio::join!(
            client(a, "sha1/rc4_256", c),
            server(b, DEFAULT_SERVER_ALGS, s)
        );
        cr.expect("client");
        sr.expect("server");
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "infpk1 handshake {label:<14} {:>8.2} ms each, {:>6.1} handshakes/s ({n} runs)",
        secs * 1e3 / f64::from(n),
        f64::from(n) / secs
    );
}

async fn throughput(alg: &str) {
    let secret: Vec<u8> = (0..128u32).map(|i| (i * 31 + 7) as u8).collect();
    let cfg = SslConfig::parse(alg).expect("alg");
    let (a, b) = duplex(1 << 18);
    let mut w = SslStream::new(a, &cfg, &secret).expect("ssl");
    let mut r = SslStream::new(b, &cfg, &secret).expect("ssl");
    let chunk = vec![0x5au8; 8192];
    let total: usize = 64 << 20;
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        while sent < total {
            w.write_all(&chunk).await.expect("write");
            sent += chunk.len();
        }
        w.flush().await.expect("flush");
        w
    });
    let mut buf = vec![0u8; 65536];
    let mut got = 0;
    while got < total {
        let n = r.read(&mut buf).await.expect("read");
        assert!(n > 0);
        got += n;
    }
    let _w = writer.await.expect("join");
    let secs = start.elapsed().as_secs_f64();
    println!("ssl {alg:<16} {:>8.1} MB/s", total as f64 / secs / 1e6);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        handshakes(&key("set2/alice"), &key("set2/srvbob"), "rsa-1024").await;
        handshakes(&key("set2/egalice"), &key("set2/egbob"), "elgamal-512").await;
        for alg in [
            "clear",
            "sha1",
            "md5",
            "rc4_256",
            "sha1/rc4_256",
            "md5 des_56_cbc",
            "sha1 ideacbc",
        ] {
            throughput(alg).await;
        }
    });
    let t = Instant::now();
    let signer = keygen::create_signer("bench", keygen::KeyAlg::Rsa, 1024, 0).expect("signer");
    println!(
        "keygen signer rsa-1024 (with dh params) {:>8.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let n = 5;
    for i in 0..n {
        keygen::issue(&signer, &format!("u{i}"), 0).expect("issue");
    }
    println!(
        "keygen issue rsa-1024                  {:>8.0} ms each",
        t.elapsed().as_secs_f64() * 1e3 / f64::from(n)
    );
}
