//! TCP keepalive on every registry connection, both ends. registry(4) ties a registration to
//! its connection, so a host that loses power (and never sends a FIN) would otherwise hold its
//! registrations for ever, and a client would wait for ever on a registry that has gone.

use std::time::Duration;
use tokio::net::TcpStream;

/// Idle time before the first probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Time between probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the connection is declared dead.
pub const KEEPALIVE_RETRIES: u32 = 3;

/// How long after the peer went silent a dead connection is noticed: [`KEEPALIVE_IDLE`] plus
/// [`KEEPALIVE_RETRIES`] × [`KEEPALIVE_INTERVAL`], one minute.
pub const KEEPALIVE_DETECTION: Duration =
    Duration::from_secs(KEEPALIVE_IDLE.as_secs() + KEEPALIVE_INTERVAL.as_secs() * 3);

/// Turns on keepalive with the timings above. A system that refuses is only logged: the
/// connection works without it.
pub fn set_keepalive(s: &TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    if let Err(e) = socket2::SockRef::from(s).set_tcp_keepalive(&ka) {
        tracing::debug!("cannot set TCP keepalive: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detection_time_is_what_the_parts_add_up_to() {
        assert_eq!(
            KEEPALIVE_DETECTION,
            KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_RETRIES
        );
    }

    #[tokio::test]
    async fn keepalive_is_on_after_dial_and_accept() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let dialled = crate::net::dial_tcp("127.0.0.1", port).await.unwrap();
        assert!(socket2::SockRef::from(&dialled).keepalive().unwrap());
        let ours = crate::net::Listener::bind(&crate::net::Addr::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        })
        .await
        .unwrap();
        let crate::net::Addr::Tcp { port, .. } = ours.local_addr().clone() else {
            unreachable!()
        };
        let _c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (crate::net::Stream::Tcp(accepted), _) = ours.accept().await.unwrap() else {
            unreachable!()
        };
        assert!(socket2::SockRef::from(&accepted).keepalive().unwrap());
    }
}
