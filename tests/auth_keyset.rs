//! keyset(2) `keysforsigner` (spec/infpk1.md §7.2) and Service.attach's key choice (§7.3).

use registries::auth::attach::{AuthAttrs, authenticate};
use registries::auth::{AuthError, AuthInfo, DEFAULT_SERVER_ALGS, keygen, keys_for_signer, server};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIGNER1: &str = "88030b18c47820ad976212efe64fe5e7dfb0e7e3";
const WRONG: &str = "5e3f38a1b878e072dde39d0ba07fba646eb3d45a";

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("spec/vectors/keys")
        .join(name)
}

/// Copies vector keys into `dir` under new names, oldest first, one minute apart.
fn populate(dir: &Path, files: &[(&str, &str)]) {
    let base = SystemTime::now() - Duration::from_secs(3600);
    for (i, (src, name)) in files.iter().enumerate() {
        let dst = dir.join(name);
        std::fs::copy(vector(src), &dst).unwrap();
        let f = std::fs::File::options().write(true).open(&dst).unwrap();
        f.set_modified(base + Duration::from_secs(60 * i as u64))
            .unwrap();
    }
}

#[test]
fn keys_for_signer_order_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    // Written newest-named first, but modification times decide the order.
    populate(
        dir.path(),
        &[
            ("set1/server.keyfile", "zz-oldest"),
            ("set1/mallory.keyfile", "m"),
            ("set1/bob.keyfile", "b"),
            ("set1/alice.keyfile", "a-newest"),
        ],
    );
    std::fs::create_dir(dir.path().join("subdir")).unwrap();
    std::fs::write(dir.path().join("junk"), b"not a key file").unwrap();

    let keys = keys_for_signer(None, Some(SIGNER1), None, Some(dir.path())).unwrap();
    let owners: Vec<&str> = keys.iter().map(|k| k.owner.as_str()).collect();
    assert_eq!(owners, ["server", "bob", "alice"]);
    assert!(keys.iter().all(|k| k.signer == "signer1"));
    assert_eq!(keys[0].path, dir.path().join("zz-oldest"));

    let by_name = keys_for_signer(Some("wrongsigner"), None, None, Some(dir.path())).unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].owner, "mallory");
    assert!(
        keys_for_signer(Some("signer1"), Some(WRONG), None, Some(dir.path()))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        keys_for_signer(None, None, None, Some(dir.path()))
            .unwrap()
            .len(),
        4
    );

    assert_eq!(
        keys_for_signer(None, Some("abc"), None, Some(dir.path()))
            .unwrap_err()
            .to_string(),
        "invalid hash string"
    );
    let missing = dir.path().join("nope");
    let e = keys_for_signer(None, None, None, Some(&missing))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("can't open {}: ", missing.display())),
        "{e}"
    );
}

#[test]
fn keys_of_one_second_come_in_reverse_directory_order() {
    // Styx mtimes are whole seconds; within one second Inferno's stable newest-first sort keeps
    // the directory's read order, and keysforsigner's prepending reverses it (the order a live
    // Inferno showed: spec/inferno-live-check.md §5.2). Nanoseconds must not matter.
    let dir = tempfile::tempdir().unwrap();
    let second = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (i, (src, name)) in [
        ("set1/alice.keyfile", "k1"),
        ("set1/bob.keyfile", "k2"),
        ("set1/server.keyfile", "k3"),
    ]
    .iter()
    .enumerate()
    {
        let dst = dir.path().join(name);
        std::fs::copy(vector(src), &dst).unwrap();
        let f = std::fs::File::options().write(true).open(&dst).unwrap();
        f.set_modified(second + Duration::from_nanos(1000 * (3 - i as u64)))
            .unwrap();
    }
    let read_order: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let keys = keys_for_signer(None, Some(SIGNER1), None, Some(dir.path())).unwrap();
    let got: Vec<PathBuf> = keys.into_iter().map(|k| k.path).collect();
    let mut want = read_order;
    want.reverse();
    assert_eq!(got, want);
}

#[test]
fn expired_keys_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let signer = AuthInfo::read(&vector("set1/signer1.signerkey")).unwrap();
    keygen::issue(&signer, "old", 1_000_000)
        .unwrap()
        .write(&dir.path().join("old"))
        .unwrap();
    keygen::issue(&signer, "new", 0)
        .unwrap()
        .write(&dir.path().join("new"))
        .unwrap();
    let keys = keys_for_signer(None, Some(SIGNER1), None, Some(dir.path())).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].owner, "new");
}

/// Serves one infpk1 connection with set1's server key and echoes 5 bytes.
fn spawn_server() -> (
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<Result<String, AuthError>>,
) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let h = tokio::spawn(async move {
        let info = AuthInfo::read(&vector("set1/server.keyfile")).unwrap();
        let (mut s, who) = server(b, DEFAULT_SERVER_ALGS, &info).await?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await?;
        s.write_all(&buf).await?;
        s.flush().await?;
        Ok(who)
    });
    (a, h)
}

fn attrs<'a>(
    auth: Option<&'a str>,
    crypt: Option<&'a str>,
    signer: Option<&'a str>,
) -> AuthAttrs<'a> {
    AuthAttrs {
        auth,
        crypt,
        signer,
    }
}

#[tokio::test]
async fn attach_chooses_by_signer_and_user() {
    let dir = tempfile::tempdir().unwrap();
    populate(
        dir.path(),
        &[
            ("set1/fakealice.keyfile", "f"),
            ("set1/bob.keyfile", "k1"),
            ("set1/alice.keyfile", "k2"),
        ],
    );

    for (user, crypt, want) in [
        (None, Some("sha1"), "bob"),
        (Some("alice"), Some("rc4_256 sha1"), "alice"),
        (Some("bob"), None, "bob"),
    ] {
        let (conn, srv) = spawn_server();
        let mut att = authenticate(
            conn,
            attrs(Some("infpk1"), crypt, Some(SIGNER1)),
            user,
            Some(dir.path()),
        )
        .await
        .unwrap();
        assert_eq!(att.signerpkhash.as_deref(), Some(SIGNER1));
        assert_eq!(att.localuser.as_deref(), Some(want));
        assert_eq!(att.remoteuser.as_deref(), Some("server"));
        assert_eq!(att.stream.is_ssl(), crypt.is_some());
        att.stream.write_all(b"hello").await.unwrap();
        att.stream.flush().await.unwrap();
        let mut buf = [0u8; 5];
        att.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(srv.await.unwrap().unwrap(), want);
    }

    let (conn, _srv) = spawn_server();
    let e = authenticate(
        conn,
        attrs(Some("infpk1"), None, Some(SIGNER1)),
        Some("zed"),
        Some(dir.path()),
    )
    .await;
    assert_eq!(e.err().unwrap().to_string(), "no matching user found");
}

#[tokio::test]
async fn attach_errors_and_no_auth() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), &[("set1/fakealice.keyfile", "default")]);
    // fakealice's directory has no key from the service's signer.
    let (conn, _srv) = spawn_server();
    let e = authenticate(
        conn,
        attrs(Some("infpk1"), None, Some(SIGNER1)),
        None,
        Some(dir.path()),
    )
    .await;
    assert_eq!(e.err().unwrap().to_string(), "no matching keys found");
    let (conn, _srv) = spawn_server();
    let e = authenticate(
        conn,
        attrs(Some("infpk1"), None, Some("xyz")),
        None,
        Some(dir.path()),
    )
    .await;
    assert_eq!(
        e.err().unwrap().to_string(),
        "no matching keys found: invalid hash string"
    );

    // Without auth.signer the directory's `default` key is used; here the server refuses it
    // (at the certificate check, or, rarely, at the check of the other signer's DH group).
    let (conn, srv) = spawn_server();
    let e = authenticate(
        conn,
        attrs(Some("auth"), None, None),
        None,
        Some(dir.path()),
    )
    .await;
    let e = e.err().unwrap().to_string();
    assert!(
        [
            "cannot authenticate: pk doesn't match certificate",
            "cannot authenticate: remote: implausible parameter value"
        ]
        .contains(&e.as_str()),
        "{e}"
    );
    let e = srv.await.unwrap().unwrap_err().to_string();
    assert!(
        [
            "pk doesn't match certificate",
            "implausible parameter value"
        ]
        .contains(&e.as_str()),
        "{e}"
    );

    let (conn, _srv) = spawn_server();
    let e = authenticate(conn, attrs(Some("kerberos"), None, None), None, None).await;
    assert_eq!(
        e.err().unwrap().to_string(),
        "unknown authentication type kerberos"
    );

    for none in [None, Some(""), Some("none")] {
        let (a, mut b) = tokio::io::duplex(64);
        let mut att = authenticate(a, attrs(none, Some("sha1"), Some(SIGNER1)), None, None)
            .await
            .unwrap();
        assert!(!att.stream.is_ssl());
        assert!(att.signerpkhash.is_none() && att.localuser.is_none() && att.remoteuser.is_none());
        att.stream.write_all(b"raw").await.unwrap();
        let mut buf = [0u8; 3];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"raw");
    }
}
