//! The PyPI `python-9p` client (plan9port's codec) drives our registry through its raw files:
//! tests/peers/registry_py9p_client.py.

mod common;

use std::time::Duration;

#[tokio::test]
async fn python_9p_client_drives_the_registry() {
    let Some(python) =
        common::peers::peer_python("python-9p", "python_9p_client_drives_the_registry")
    else {
        return;
    };
    let server = common::registry::start().await;
    let port = match &server.local_addrs()[0] {
        registries::net::Addr::Tcp { port, .. } => *port,
        other => panic!("not tcp: {other}"),
    };
    let script = common::peers::peer_script("registry_py9p_client.py");
    let child = tokio::process::Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("driver hangs")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python driver failed:\n{stdout}");
    assert!(stdout.contains("driver done"));
    server.shutdown().await;
}
