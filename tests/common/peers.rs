//! Locating the Python 9P peers installed by tests/peers/setup.sh.

use std::path::PathBuf;

/// The python interpreter of the peer venv `name` (python-9p, p9fs, aio9p) under
/// target/peers/. `None` (after a loud SKIP line naming `test`) when it is missing, unless
/// REGISTRY_REQUIRE_PEERS=1, in which case this panics: CI must not skip.
pub fn peer_python(name: &str, test: &str) -> Option<PathBuf> {
    let root = std::env::var_os("REGISTRY_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::root().join("target/peers"));
    let python = root.join(name).join("bin/python");
    if python.is_file() && root.join(name).join(".installed").is_file() {
        return Some(python);
    }
    let required = std::env::var("REGISTRY_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "peer {name} missing at {}: run tests/peers/setup.sh",
        python.display()
    );
    eprintln!(
        "SKIP {test}: python peer {name} is not installed ({}); run tests/peers/setup.sh",
        python.display()
    );
    None
}

/// The path of a driver script in tests/peers/.
pub fn peer_script(file: &str) -> PathBuf {
    super::root().join("tests/peers").join(file)
}
