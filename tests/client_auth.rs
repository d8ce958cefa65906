//! `Service.attach` with infpk1 against a registry served behind Inferno authentication, with
//! the test keys of spec/vectors/keys/set1 (signer1 certifies alice, bob and server).

use registries::client::{Attributes, Error, Registry, Service};
use registries::styx::server::ConnCtx;
use std::path::{Path, PathBuf};

const SIGNER1: &str = "88030b18c47820ad976212efe64fe5e7dfb0e7e3";

fn key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("spec/vectors/keys/set1")
        .join(name)
}

/// A key directory holding copies of the named key files.
fn keydir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::copy(key(n), dir.path().join(n)).unwrap();
    }
    dir
}

/// A registry that authenticates every connection as `server`; returns its dial string.
async fn start_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let info = registries::auth::AuthInfo::read(&key("server.keyfile")).unwrap();
    let registry = registries::registry::Server::new();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let (info, registry) = (info.clone(), registry.clone());
            tokio::spawn(async move {
                let algs = registries::auth::DEFAULT_SERVER_ALGS;
                let Ok((stream, user)) = registries::auth::server(stream, algs, &info).await else {
                    return;
                };
                let ctx = ConnCtx {
                    authenticated_user: Some(user),
                    peer: peer.to_string(),
                    settled: None,
                };
                let _ = registry.serve_connection(stream, ctx).await;
            });
        }
    });
    format!("tcp!127.0.0.1!{port}")
}

fn service(addr: &str, crypt: &str) -> Service {
    Service::new(
        addr,
        Attributes::new([
            ("auth", "infpk1"),
            ("auth.signer", SIGNER1),
            ("auth.crypt", crypt),
        ]),
    )
}

#[tokio::test]
async fn infpk1_attach_register_and_owner_check() {
    let addr = start_server().await;
    let alice_keys = keydir(&["alice.keyfile"]);
    let a = service(&addr, "rc4_256 sha1")
        .attach(None, Some(alice_keys.path()))
        .await
        .unwrap();
    assert_eq!(a.signerpkhash.as_deref(), Some(SIGNER1));
    assert_eq!(a.localuser.as_deref(), Some("alice"));
    assert_eq!(a.remoteuser.as_deref(), Some("server"));
    let alice = Registry::connect_stream(a.fd, a.localuser.as_deref())
        .await
        .unwrap();
    let _r = alice
        .register("svc", &Attributes::new([("k", "v")]), false)
        .await
        .unwrap();

    // bob, through Registry::connect, sees it but may not remove it.
    let bob_keys = keydir(&["bob.keyfile"]);
    let svc = service(&addr, "none");
    let bob = Registry::connect(Some(&svc), None, Some(bob_keys.path()))
        .await
        .unwrap();
    assert_eq!(bob.find(&[("k", "v")]).await.unwrap().len(), 1);
    let e = bob.unregister("svc").await.unwrap_err();
    assert_eq!(e.to_string(), "permission denied");
    alice.unregister("svc").await.unwrap();
    assert!(bob.services().await.unwrap().is_empty());
}

#[tokio::test]
async fn infpk1_key_choice_errors() {
    let addr = start_server().await;
    // No key in the directory is certified by the service's signer.
    let fake = keydir(&["fakealice.keyfile"]);
    let e = service(&addr, "none")
        .attach(None, Some(fake.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Auth(t) if t.starts_with("no matching keys found")),
        "{e}"
    );
    // A key for the signer, but not for this user.
    let alice_keys = keydir(&["alice.keyfile"]);
    let e = service(&addr, "none")
        .attach(Some("bob"), Some(alice_keys.path()))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "no matching user found");
}
