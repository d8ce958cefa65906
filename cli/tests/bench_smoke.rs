//! `registry bench` runs end to end at a trivial size against our own registry (no etcd; and
//! ZooKeeper where Debian's zookeeperd is installed, which CI requires). It checks only that every scenario runs
//! and the closing table and its JSON are written: no figures are judged.

use std::process::Command;
use std::time::Duration;

#[test]
fn bench_runs_every_scenario_at_a_tiny_size() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let svg = dir.path().join("bench.svg");
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["bench", "--tiny", "--no-etcd", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start registry bench");
    // A generous bound against hangs only: a tiny run takes seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("registry bench --tiny did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("FAILED"), "a scenario failed:\n{stdout}");
    let table = stdout.split("scenario").last().unwrap_or_default();
    for name in [
        "floor-rtt-p50-us",
        "register-1client/s",
        "register-4client/s",
        "find-selective-30/s",
        "find-all-30/s",
        "fanout-5-p50-ms",
        "memory-per-service-B",
        "memory-per-watcher-B",
        "connections-5/s",
        "feed-wake-5-p99-us",
        "follow-changes/s",
    ] {
        assert!(table.contains(name), "no `{name}` line in:\n{stdout}");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let lines = v.as_array().expect("an array");
    let find = |name: &str| lines.iter().find(|l| l["scenario"] == name).cloned();
    let mem = find("memory-per-service-B").expect("the memory line");
    assert_eq!(mem["unit"], "B");
    assert_eq!(mem["higher_is_better"], false);
    assert!(mem["ours"].is_number() && mem["etcd"].is_null());
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.contains("<svg") && picture.contains("memory-per-service-B"));
    // ZooKeeper is measured where it is installed, and in CI (REGISTRY_REQUIRE_PEERS) it must be.
    let zookeeper = std::path::Path::new("/usr/share/java/zookeeper.jar").exists();
    assert!(
        zookeeper || std::env::var_os("REGISTRY_REQUIRE_PEERS").is_none(),
        "zookeeperd is not installed (Debian: apt-get install zookeeperd)"
    );
    if zookeeper {
        assert!(
            mem["zookeeper"].is_number(),
            "ZooKeeper installed but not measured:\n{stdout}"
        );
    }
}
