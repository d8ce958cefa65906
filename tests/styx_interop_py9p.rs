//! The independent `python-9p` client (plan9port's codec) drives our 9P server.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::peers::{peer_python, peer_script};
use common::ramfs::RamFs;
use registries::styx::server::Limits;

#[tokio::test]
async fn python_9p_client_against_our_server() {
    let Some(python) = peer_python("python-9p", "python_9p_client_against_our_server") else {
        return;
    };
    let fs = RamFs::new();
    let port = common::serve_fs(fs.clone(), Limits::default()).await.port();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python)
            .arg(peer_script("py9p_client_driver.py"))
            .arg(port.to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("driver hung")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python-9p driver failed");
    assert!(stdout.contains("driver done: "));
    assert!(fs.users.lock().unwrap().iter().all(|u| u == "glenda"));
    // The flushed read was dropped by the server.
    assert_eq!(fs.cancelled_reads.load(Ordering::SeqCst), 1);
}
