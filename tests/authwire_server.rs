//! A registry server that requires infpk1 (`Builder::auth`), driven through the library: the
//! authenticated user owns what it registers, the Tattach name is not trusted, keys from
//! the wrong signer and unauthenticated clients are refused, and the server keeps running.
//! Keys: spec/vectors/keys/set1 (signer1 certifies server, alice and bob; mallory has
//! another signer).

use registries::auth::{AuthInfo, DEFAULT_SERVER_ALGS};
use registries::client::{Attributes, Registry};
use registries::registry::{RunningServer, Server};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Generous bound that only keeps a broken build from hanging the test run.
const HANG: Duration = Duration::from_secs(60);

fn key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("spec/vectors/keys/set1")
        .join(name)
}

fn info(name: &str) -> AuthInfo {
    AuthInfo::read(&key(name)).unwrap()
}

async fn start(algs: &[&str]) -> (RunningServer, String) {
    let running = Server::builder()
        .listen_str("tcp!127.0.0.1!0")
        .unwrap()
        .auth(info("server.keyfile"), algs.iter().copied())
        .start()
        .await
        .unwrap();
    let addr = running.local_addrs()[0].to_string();
    (running, addr)
}

async fn connect(addr: &str, who: &str, alg: &str) -> Registry {
    tokio::time::timeout(HANG, Registry::connect_with_key(addr, &info(who), alg))
        .await
        .unwrap()
        .unwrap()
}

fn owner_of(running: &RunningServer, name: &str) -> Option<String> {
    running.server().owner(name)
}

#[tokio::test]
async fn authenticated_user_owns_its_registrations() {
    let (running, addr) = start(DEFAULT_SERVER_ALGS).await;
    let alice = connect(&addr, "alice.keyfile", "sha1/rc4_256").await;
    let attrs = Attributes::new([("proto", "styx")]);
    let held = alice.register("tcp!h!1", &attrs, false).await.unwrap();
    assert_eq!(owner_of(&running, "tcp!h!1").as_deref(), Some("alice"));

    // Bob, with his own Tattach name, may not remove it.
    let bob = connect(&addr, "bob.keyfile", "none").await;
    let found = bob.find(&[("proto", "styx")]).await.unwrap();
    assert_eq!(found.len(), 1);
    let e = bob.unregister("tcp!h!1").await.unwrap_err();
    assert_eq!(e.to_string(), "permission denied");

    // Nor when his Tattach claims to be alice: the key decides.
    let conn = registries::client::dial(&addr).await.unwrap();
    let (conn, server) = registries::auth::client(conn, "sha1", &info("bob.keyfile"))
        .await
        .unwrap();
    assert_eq!(server, "server");
    let liar = Registry::connect_stream(conn, Some("alice")).await.unwrap();
    let e = liar.unregister("tcp!h!1").await.unwrap_err();
    assert_eq!(e.to_string(), "permission denied");
    // And what the liar registers is bob's.
    let _bobs = liar.register("tcp!h!2", &attrs, false).await.unwrap();
    assert_eq!(owner_of(&running, "tcp!h!2").as_deref(), Some("bob"));

    // Alice may, from another connection too.
    let alice2 = connect(&addr, "alice.keyfile", "md5").await;
    alice2.unregister("tcp!h!1").await.unwrap();
    assert_eq!(owner_of(&running, "tcp!h!1"), None);
    drop(held);
    running.shutdown().await;
}

#[tokio::test]
async fn wrong_signer_and_unauthenticated_clients_are_refused() {
    let (running, addr) = start(DEFAULT_SERVER_ALGS).await;
    for who in ["mallory.keyfile", "fakealice.keyfile"] {
        let r = tokio::time::timeout(HANG, Registry::connect_with_key(&addr, &info(who), "none"))
            .await
            .unwrap();
        let e = r.unwrap_err();
        assert!(
            e.to_string().starts_with("cannot authenticate"),
            "{who}: {e}"
        );
    }
    // A plain 9P client gets an error, not a hang and not a session.
    let r = tokio::time::timeout(HANG, Registry::open(&addr))
        .await
        .unwrap();
    assert!(r.is_err());
    // The server is still there for a good key.
    let alice = connect(&addr, "alice.keyfile", "none").await;
    assert!(alice.services().await.unwrap().is_empty());
    running.shutdown().await;
}

#[tokio::test]
async fn alg_list_narrows_what_clients_may_ask_for() {
    let (running, addr) = start(&["sha1"]).await;
    let alice = connect(&addr, "alice.keyfile", "sha1").await;
    assert!(alice.services().await.unwrap().is_empty());
    // `none` is not in the list: the server hangs up after the algorithm message.
    let r = tokio::time::timeout(
        HANG,
        Registry::connect_with_key(&addr, &info("alice.keyfile"), "none"),
    )
    .await
    .unwrap();
    assert!(r.is_err());
    running.shutdown().await;
}

#[tokio::test]
async fn connect_with_a_service_that_asks_for_infpk1() {
    let (running, addr) = start(DEFAULT_SERVER_ALGS).await;
    let keydir = tempfile::tempdir().unwrap();
    std::fs::copy(key("bob.keyfile"), keydir.path().join("bob")).unwrap();
    let svc = registries::client::Service::new(
        addr.as_str(),
        Attributes::new([
            ("auth", "infpk1"),
            ("auth.crypt", "sha1/rc4_256"),
            ("auth.signer", "88030b18c47820ad976212efe64fe5e7dfb0e7e3"),
        ]),
    );
    let reg = tokio::time::timeout(
        HANG,
        Registry::connect(Some(&svc), None, Some(keydir.path())),
    )
    .await
    .unwrap()
    .unwrap();
    let attrs = Attributes::new([("proto", "styx")]);
    let _held = reg.register("tcp!h!3", &attrs, false).await.unwrap();
    assert_eq!(owner_of(&running, "tcp!h!3").as_deref(), Some("bob"));
    running.shutdown().await;
}

/// What the auth port says to `input`, read until it has said `want` bytes (the connection
/// then still open).
async fn auth_port_reply(
    addr: &str,
    input: &[u8],
    want: usize,
) -> (Vec<u8>, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port: u16 = addr.rsplit('!').next().unwrap().parse().unwrap();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(input).await.unwrap();
    let mut got = vec![0u8; want];
    tokio::time::timeout(HANG, s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    (got, s)
}

#[tokio::test]
async fn a_header_that_is_no_number_gets_inferno_s_answer_and_the_connection_stays() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_running, addr) = start(DEFAULT_SERVER_ALGS).await;
    // Our version first, then Inferno's refusal of a peer whose version is not 1: getmsg reads
    // the length with strtoul, so `abcd\n` is an empty message.
    let expected = b"0001\n1!044\nremote: incompatible authentication protocol";
    for input in [&b"abcd\n"[..], b"\x13\x00\x00\x00\x64\xff\xff\x00\x00"] {
        let (got, mut s) = auth_port_reply(&addr, input, expected.len()).await;
        assert_eq!(got, expected, "{input:?}");
        // Still read, as Inferno reads on for the peer's verdict: nothing more comes until the
        // peer ends, and then the connection closes without a reset.
        s.write_all(b"0000\n").await.unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(200), s.read(&mut [0u8; 1])).await;
        assert!(
            quiet.is_err(),
            "the server answered or closed early: {quiet:?}"
        );
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let end = tokio::time::timeout(HANG, s.read_to_end(&mut rest))
            .await
            .unwrap();
        assert!(end.is_ok(), "{end:?}");
    }
}
