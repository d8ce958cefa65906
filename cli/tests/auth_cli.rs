//! `registry key`: keys made by the command line load, verify and authenticate, also against
//! keys made by a real Inferno.

use registries::auth::{AuthInfo, DEFAULT_SERVER_ALGS, client, pkhash, server, verify};
use std::path::{Path, PathBuf};
use std::process::Command;

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../spec/vectors/keys")
        .join(name)
}

fn ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

async fn authenticates(c: &Path, s: &Path) -> (String, String) {
    let (c, s) = (AuthInfo::read(c).unwrap(), AuthInfo::read(s).unwrap());
    let (a, b) = tokio::io::duplex(1 << 16);
    let (cr, sr) = tokio::join!(
        client(a, "sha1/rc4_256", &c),
        server(b, DEFAULT_SERVER_ALGS, &s)
    );
    (cr.unwrap().1, sr.unwrap().1)
}

#[tokio::test]
async fn signer_issue_show() {
    let dir = tempfile::tempdir().unwrap();
    let signer = dir.path().join("signer.key");
    ok(registry()
        .args(["key", "signer", "-b", "512", "-e", "31122037", "-f"])
        .arg(&signer)
        .arg("testsigner"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&signer).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let s = AuthInfo::read(&signer).unwrap();
    assert_eq!(s.mypk.owner, "testsigner");
    assert_eq!(s.spk, s.mypk);
    assert!(s.cert.exp > 2_000_000_000);
    assert!(verify(&s.spk, &s.cert, s.mypk.to_text().as_bytes()));

    // issue to stdout and to a file.
    let alice = dir.path().join("alice");
    std::fs::write(
        &alice,
        ok(registry()
            .args(["key", "issue", "-k"])
            .arg(&signer)
            .arg("alice")),
    )
    .unwrap();
    let bob = dir.path().join("bob");
    ok(registry()
        .args(["key", "issue", "-e", "permanent", "-k"])
        .arg(&signer)
        .arg("bob")
        .arg(&bob));
    let a = AuthInfo::read(&alice).unwrap();
    assert_eq!(a.mypk.owner, "alice");
    assert_eq!(pkhash(&a.spk), pkhash(&s.mypk));
    assert_eq!(a.cert.exp, 0);
    assert_eq!(
        authenticates(&alice, &bob).await,
        ("bob".into(), "alice".into())
    );

    // A user issued by Inferno's signer key authenticates against Inferno's srvbob.
    let newbie = dir.path().join("newbie");
    ok(registry()
        .args(["key", "issue", "-k"])
        .arg(vector("set2/mysigner.signerkey"))
        .arg("newbie")
        .arg(&newbie));
    assert_eq!(
        authenticates(&newbie, &vector("set2/srvbob")).await,
        ("srvbob".into(), "newbie".into())
    );

    let shown = String::from_utf8(ok(registry()
        .args(["key", "show"])
        .arg(&alice)
        .arg(vector("set2/carol"))))
    .unwrap();
    assert!(shown.contains("owner          alice"), "{shown}");
    assert!(shown.contains("signer         testsigner"), "{shown}");
    assert!(
        shown.contains(&format!("signer pkhash  {}", pkhash(&s.spk))),
        "{shown}"
    );
    assert!(
        shown.contains("signer pkhash  d9d058bfe434c7d659bb34d8f0c52f77458829af"),
        "{shown}"
    );
    assert!(
        shown.contains("expires        2030-01-01 21:33:26 UTC (1893533606)"),
        "{shown}"
    );
    assert!(shown.contains("algorithm      rsa (1025 bits)"), "{shown}");
}

#[test]
fn elgamal_signer_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let signer = dir.path().join("eg.key");
    ok(registry()
        .args(["key", "signer", "-a", "elgamal", "-b", "256", "-f"])
        .arg(&signer)
        .arg("egs"));
    let user = dir.path().join("u");
    ok(registry()
        .args(["key", "issue", "-k"])
        .arg(&signer)
        .arg("u")
        .arg(&user));
    let u = AuthInfo::read(&user).unwrap();
    assert_eq!(u.mypk.alg.name(), "elgamal");

    // Inferno's checks on dates and algorithms.
    let out = registry()
        .args(["key", "issue", "-e", "01011999", "-k"])
        .arg(&signer)
        .arg("x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expiry date has already passed"));
    let out = registry()
        .args(["key", "signer", "-a", "dsa", "-f"])
        .arg(dir.path().join("d"))
        .arg("d")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = registry()
        .args(["key", "show"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}
