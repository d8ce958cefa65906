//! The network-namespace harness (tests/common/netns.rs) tried on itself: a three-member etcd
//! cluster and a client host, member 0 cut off and healed. A cut must behave like a real
//! partition: the rest of the cluster goes on, the cut member cannot commit alone, and an open
//! TCP connection to it hears nothing at all (no reset, no FIN) and carries on once healed.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::netns::{self, ETCD_CLIENT_PORT, Host, Net, NetEtcd, Side};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// An HTTP request etcd's client port answers from memory, without asking the cluster.
const VERSION: &[u8] = b"GET /version HTTP/1.1\r\nHost: etcd\r\n\r\n";

/// How long a read waits for what must not come while cut.
const SILENCE: Duration = Duration::from_secs(3);

/// Runs `etcdctl --endpoints=ENDPOINTS ARGS` on host `c`; its output if it succeeded.
fn etcdctl_from(net: &Net, c: &Host, endpoints: &str, args: &[&str]) -> Option<String> {
    let out = net
        .command(c, "etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .args(["--dial-timeout=1s", "--command-timeout=2s"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Retries [`etcdctl_from`] for up to 30 s (an election may be under way).
fn eventually(net: &Net, c: &Host, endpoints: &str, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(out) = etcdctl_from(net, c, endpoints, args) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "etcdctl {args:?} never succeeded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads one answer to [`VERSION`] (a JSON body, ending with `}`).
fn answer(conn: &mut TcpStream) -> std::io::Result<String> {
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    while !got.ends_with(b"}") {
        match conn.read(&mut buf)? {
            0 => return Err(ErrorKind::UnexpectedEof.into()),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// With member 0 cut off, from host `c` (whose namespace the calling thread enters): a
/// connection made before the cut hears nothing, the others take a write that member 0 cannot,
/// and after the heal the same connection gets its answer and member 0 serves reads again.
fn partition(net: &Net, etcd: &NetEtcd, c: &Host) {
    let m0 = &etcd.members[0];
    net.enter(c).expect("setns into c");
    let addr = SocketAddr::from((m0.etcd_ip.unwrap(), ETCD_CLIENT_PORT));
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    conn.write_all(VERSION).unwrap();
    assert!(answer(&mut conn).unwrap().contains("etcdserver"));

    let cut_at = Instant::now();
    net.cut(m0, Side::All);
    silent(&mut conn, addr);
    majority_goes_on(net, etcd, c);
    eprintln!(
        "cut for {:?}; leader now m{}",
        cut_at.elapsed(),
        etcd.leader(net)
    );

    net.heal(m0, Side::All);
    healed(&mut conn, net, etcd, c);
}

/// While member 0 (at `addr`) is cut: a request on the open connection `conn` gets neither an
/// answer nor a reset nor an end of stream, only a read timeout; a new connection is not
/// refused either, its SYNs simply go unanswered.
fn silent(conn: &mut TcpStream, addr: SocketAddr) {
    conn.write_all(VERSION)
        .expect("a write into a partition is buffered");
    conn.set_read_timeout(Some(SILENCE)).unwrap();
    match answer(conn) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a cut must be silent, yet the connection got {other:?}"),
    }
    let fresh = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.kind());
    assert_eq!(
        fresh.err(),
        Some(ErrorKind::TimedOut),
        "connecting to a cut host"
    );
}

/// While member 0 is cut: `c` writes through members 1 and 2, and through all three endpoints
/// as `registry serve --etcd` would be given them; member 0 alone cannot commit.
fn majority_goes_on(net: &Net, etcd: &NetEtcd, c: &Host) {
    let others = [etcd.endpoint(1), etcd.endpoint(2)].join(",");
    eventually(net, c, &others, &["put", "/k", "during"]);
    eventually(net, c, &etcd.endpoints(), &["put", "/k", "during-all"]);
    let value = etcd.etcdctl(net, &["get", "/k", "--print-value-only"]);
    assert_eq!(value.as_deref(), Some("during-all\n"));
    let alone = etcd.etcdctl_on(net, 0, &["put", "/k", "alone"]);
    assert!(alone.is_none(), "a minority committed");
}

/// After the heal: the request sent into the partition on `conn` is answered (TCP retransmits
/// it; the connection never noticed), and member 0 serves a linearizable read to `c` again.
fn healed(conn: &mut TcpStream, net: &Net, etcd: &NetEtcd, c: &Host) {
    let healed = Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let late = answer(conn).expect("the connection outlives the partition");
    assert!(late.contains("etcdserver"), "{late}");
    eprintln!(
        "the old connection answered {:?} after the heal",
        healed.elapsed()
    );
    let value = eventually(
        net,
        c,
        &etcd.endpoint(0),
        &["get", "/k", "--print-value-only"],
    );
    assert_eq!(value, "during-all\n");
    eprintln!(
        "member 0 serves again {:?} after the heal",
        healed.elapsed()
    );
}

/// Whether any namespace whose name starts with `tag` is left (`ip netns list`).
fn namespaces_left(tag: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(tag))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_cut_is_silent_and_heals() {
    if !netns::available() {
        return;
    }
    let started = Instant::now();
    let mut net = Net::new();
    let etcd = NetEtcd::start(&mut net, 3);
    let c = net.host("c", true, true);
    eprintln!(
        "etcd up in {:?}; leader m{}",
        started.elapsed(),
        etcd.leader(&net)
    );

    eventually(&net, &c, &etcd.endpoints(), &["put", "/k", "before"]);
    let value = etcdctl_from(
        &net,
        &c,
        &etcd.endpoints(),
        &["get", "/k", "--print-value-only"],
    );
    assert_eq!(value.as_deref(), Some("before\n"));

    // A thread of its own enters c, so that this one stays where it was.
    std::thread::scope(|s| {
        s.spawn(|| partition(&net, &etcd, &c));
    });

    let (tag, pids) = (net.tag().to_string(), etcd.pids.clone());
    drop(net);
    assert_eq!(namespaces_left(&tag), Vec::<String>::new());
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "etcd {pid} lives on"
        );
    }
    eprintln!("whole test {:?}", started.elapsed());
}
