//! What a first program meets: typed dial failures, time limits on every call, one error type
//! for a program that serves and is a client, a monitor of everything without a turbofish.

mod common;

use registries::client::Error;
use registries::{Attributes, Registry, Server};
use std::io::ErrorKind;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_refused_dial_says_so_in_a_typed_kind() {
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Registry::open(format!("tcp!127.0.0.1!{port}"))
        .await
        .unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::ConnectionRefused), "{err}");
    assert!(matches!(err, Error::Dial(_)), "{err:?}");
    assert!(err.to_string().starts_with("cannot dial: "), "{err}");
    // The operating system's error is the source, not only text.
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn a_registry_that_never_answers_times_out() {
    // Accepts, then says nothing: the 9P handshake waits for ever without a limit.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let start = Instant::now();
    let err =
        Registry::open_with_timeout(format!("tcp!127.0.0.1!{port}"), Duration::from_millis(300))
            .await
            .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { what: "open", .. }),
        "{err:?}"
    );
    assert_eq!(err.io_kind(), Some(ErrorKind::TimedOut));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn every_call_keeps_to_the_registrys_time_limit() {
    let running = common::registry::start().await;
    let reg = Registry::open(running.addr())
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let mut all = reg.monitor_all().await.unwrap();
    let _held = reg
        .register("tcp!a!1", &Attributes::new([("k", "v")]), false)
        .await
        .unwrap();
    assert!(all.next().await.unwrap().is_ok());
    assert_eq!(reg.find(&[("k", "v")]).await.unwrap().len(), 1);
}

/// A program that serves and finds returns one error type: `?` works on both sides.
async fn serve_and_find() -> Result<usize, registries::Error> {
    let running = Server::builder()
        .listen_str("tcp!127.0.0.1!0")?
        .start()
        .await?;
    let reg = Registry::open(running.addr()).await?;
    Ok(reg.services().await?.len())
}

#[tokio::test]
async fn server_errors_convert_into_the_client_error() {
    assert_eq!(serve_and_find().await.unwrap(), 0);
    let err: registries::Error = Server::builder().listen_str("tcp!").unwrap_err().into();
    assert!(matches!(err, Error::Other(_)), "{err:?}");
}
