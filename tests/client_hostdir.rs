//! The host-directory backend on an ordinary directory: what can be checked without a
//! registry mounted by the operating system (reading `index`, the files written, diagnostics).

use registries::client::{Attributes, Error, Registry};

const INDEX: &str = "tcp!127.0.0.1!7001 empty '' description 'it''s a test' proto styx\n\
                     tcp!127.0.0.1!7002 persist 1 auth infpk1 proto styx\n";

#[tokio::test]
async fn reads_index_and_writes_new() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index"), INDEX).unwrap();
    std::fs::write(dir.path().join("new"), "").unwrap();
    let reg = Registry::new(dir.path()).await.unwrap();
    assert_eq!(reg.dir(), dir.path());
    let all = reg.services().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].attrs.get("description"), Some("it's a test"));

    // The index is re-read from the start each time, through the fd opened at `new`.
    std::fs::write(dir.path().join("index"), "a b c\n").unwrap();
    assert_eq!(reg.services().await.unwrap().len(), 1);

    let attrs = Attributes::new([("proto", "styx"), ("description", "it's a test")]);
    let mut r = reg.register("tcp!h!1", &attrs, true).await.unwrap();
    r.write(" load 5").await.unwrap();
    r.close().await.unwrap();
    let written = std::fs::read_to_string(dir.path().join("new")).unwrap();
    assert_eq!(
        written,
        "tcp!h!1 proto styx description 'it''s a test' persist 1 load 5"
    );
}

#[tokio::test]
async fn diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Registry::new(dir.path()).await.unwrap_err();
    assert!(matches!(missing, Error::NoRegistry { .. }), "{missing}");

    std::fs::write(dir.path().join("index"), "").unwrap();
    let reg = Registry::new(dir.path()).await.unwrap();
    assert!(reg.services().await.unwrap().is_empty());
    let e = reg.events().await.unwrap_err();
    assert!(matches!(e, Error::NoEvents(_)), "{e}");
    let e = reg.unregister("nosuch").await.unwrap_err();
    assert!(matches!(e, Error::Registry(_)), "{e}");
    assert!(reg.mount("/mnt/elsewhere").is_err());
}
