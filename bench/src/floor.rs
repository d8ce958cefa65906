//! The physical floor: a raw loopback TCP echo round trip, through the same runtime and socket
//! options (TCP_NODELAY) as the registry client, with messages the size of small 9P requests.

use super::stats::Samples;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes per echo message: about a Twrite of a short registration line.
const MSG: usize = 64;

/// Times `n` echo round trips of one client against an in-process echo server.
pub async fn echo_round_trips(n: usize) -> std::io::Result<Samples> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; MSG];
        loop {
            if s.read_exact(&mut buf).await.is_err() {
                return Ok::<(), std::io::Error>(());
            }
            s.write_all(&buf).await?;
        }
    });
    let mut c = TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    let msg = [7u8; MSG];
    let mut back = [0u8; MSG];
    // Warm up the connection and the caches before timing.
    for _ in 0..n.min(1000) {
        c.write_all(&msg).await?;
        c.read_exact(&mut back).await?;
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        c.write_all(&msg).await?;
        c.read_exact(&mut back).await?;
        lat.push(t.elapsed());
    }
    let wall = start.elapsed();
    drop(c);
    let _ = server.await;
    Ok(Samples { lat, wall })
}
