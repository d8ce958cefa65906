//! `cargo bench --bench styx`: prints 9P codec and loopback round-trip figures.
//!
//! * messages encoded and decoded per second (a mix of small T and R messages);
//! * a raw loopback TCP echo round trip, the physical floor, measured in the same run, both
//!   with blocking sockets on OS threads and with tokio tasks;
//! * small reads (16 bytes) through our client against our server over loopback TCP,
//!   with 1 and with 64 requests in flight.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use registries::styx::server::{ConnCtx, FileSystem, FsError, Limits, Opened, serve_connection};
use registries::styx::{Body, Client, Msg, OREAD, QTDIR, Qid, Stat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RUN: Duration = Duration::from_secs(2);

/// One directory with one 16-byte file `f`; enough for round trips.
struct Tiny;

impl FileSystem for Tiny {
    type Fid = bool;

    async fn attach(&self, _: &ConnCtx, _: &str, _: &str) -> Result<(bool, Qid), FsError> {
        Ok((
            true,
            Qid {
                ty: QTDIR,
                version: 0,
                path: 0,
            },
        ))
    }
    async fn walk(&self, _: &bool, _: &str) -> Result<(bool, Qid), FsError> {
        Ok((
            false,
            Qid {
                ty: 0,
                version: 0,
                path: 1,
            },
        ))
    }
    fn clone_fid(&self, fid: &bool) -> bool {
        *fid
    }
    async fn open(&self, fid: &bool, _: u8) -> Result<Opened, FsError> {
        Ok(Opened {
            qid: Qid {
                ty: if *fid { QTDIR } else { 0 },
                version: 0,
                path: u64::from(!*fid),
            },
            iounit: 0,
        })
    }
    async fn read(&self, _: &bool, _: u64, count: u32) -> Result<Bytes, FsError> {
        let data = Bytes::from_static(b"0123456789abcdef");
        Ok(data.slice(..data.len().min(count as usize)))
    }
}

fn sample_messages() -> Vec<Msg> {
    let stat = Stat {
        name: "file".into(),
        uid: "u".into(),
        gid: "g".into(),
        muid: "u".into(),
        ..Stat::default()
    };
    let qid = Qid {
        ty: 0,
        version: 1,
        path: 42,
    };
    [
        Body::Tread {
            fid: 7,
            offset: 0,
            count: 8168,
        },
        Body::Rread {
            data: Bytes::from_static(b"0123456789abcdef"),
        },
        Body::Twalk {
            fid: 1,
            newfid: 2,
            wnames: vec!["services".into(), "index".into()],
        },
        Body::Rwalk {
            wqids: vec![qid, qid],
        },
        Body::Twrite {
            fid: 3,
            offset: 0,
            data: Bytes::from_static(b"tcp!host!6701 auth none"),
        },
        Body::Rwrite { count: 23 },
        Body::Topen {
            fid: 2,
            mode: OREAD,
        },
        Body::Ropen { qid, iounit: 0 },
        Body::Tclunk { fid: 2 },
        Body::Rclunk,
        Body::Rstat { stat },
        Body::Rerror {
            ename: "file does not exist".into(),
        },
    ]
    .into_iter()
    .enumerate()
    .map(|(i, body)| Msg {
        tag: i as u16,
        body,
    })
    .collect()
}

fn codec() {
    let msgs = sample_messages();
    let mut buf = BytesMut::with_capacity(1 << 16);
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed() < RUN {
        for _ in 0..1000 {
            buf.clear();
            for m in &msgs {
                m.encode(&mut buf).unwrap();
            }
            n += msgs.len() as u64;
            black_box(&buf);
        }
    }
    let enc = n as f64 / start.elapsed().as_secs_f64();
    let frames: Vec<Bytes> = msgs.iter().map(|m| m.to_bytes().unwrap()).collect();
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed() < RUN {
        for _ in 0..1000 {
            for f in &frames {
                black_box(Msg::decode(f.clone(), 8216).unwrap());
            }
            n += frames.len() as u64;
        }
    }
    let dec = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "codec: {:.2} M messages encoded/s, {:.2} M messages decoded/s ({} kinds of small message)",
        enc / 1e6,
        dec / 1e6,
        msgs.len()
    );
}

/// The same echo with blocking sockets on two OS threads: no runtime in the way.
fn echo_floor_blocking() -> f64 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 27];
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed() < RUN {
        s.write_all(&buf).unwrap();
        s.read_exact(&mut buf).unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn echo_floor() -> f64 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 27];
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed() < RUN {
        s.write_all(&buf).await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn styx_reads(in_flight: usize) -> f64 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, peer) = l.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let ctx = ConnCtx {
            authenticated_user: None,
            peer: peer.to_string(),
            settled: None,
        };
        let _ = serve_connection(s, Arc::new(Tiny), ctx, Limits::default()).await;
    });
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let c = Client::connect(s).await.unwrap();
    let root = c.attach("bench", "").await.unwrap();
    let mut f = root.walk(&["f"]).await.unwrap();
    f.open(OREAD).await.unwrap();
    let f = Arc::new(f);
    let start = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < RUN {
                    assert_eq!(f.read(0, 16).await.unwrap().len(), 16);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too: keep that short.
    if std::env::args().any(|a| a == "--test") || std::env::args().all(|a| a != "--bench") {
        println!("styx bench: run with `cargo bench --bench styx`");
        return;
    }
    println!(
        "styx bench ({} CPUs, each figure measured for {:?})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        RUN
    );
    codec();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let blocking = echo_floor_blocking();
        println!(
            "loopback TCP echo (floor), blocking threads, 1 in flight: {blocking:.0} round trips/s ({:.1} µs each)",
            1e6 / blocking
        );
        let echo = echo_floor().await;
        println!(
            "loopback TCP echo (floor), tokio tasks, 1 in flight: {echo:.0} round trips/s ({:.1} µs each)",
            1e6 / echo
        );
        for k in [1, 64] {
            let r = styx_reads(k).await;
            println!(
                "styx 16-byte Tread/Rread, {k:>2} in flight: {r:.0} round trips/s \
                 ({:.1} µs per round trip, amortized)",
                1e6 / r
            );
        }
    });
}
