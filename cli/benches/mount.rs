//! `cargo bench -p registry --bench mount`: what the FUSE mount costs. A registry of 10,000
//! services, read whole through `registry mount` and directly (the Rust API over 9P, and
//! `registry query` as a process beside `cat` on the mount), and a registration made and
//! dropped each way. Medians of 20 runs after 3 warm-ups, with the range; the mount's overhead
//! as a ratio. Needs /dev/fuse and fusermount3; says so and stops without them.

use registries::{Attributes, Registry};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

const SERVICES: usize = 10_000;
const RUNS: usize = 20;
const WARMUP: usize = 3;

/// Starts `registry ARGS` and waits for a standard-error line containing `want`.
async fn start(args: &[&str], want: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(args)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = loop {
        let l = lines.next_line().await.unwrap().expect("ended early");
        if l.contains(want) {
            break l;
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, line)
}

/// Median, fastest and slowest of `RUNS` timings of `f`, after `WARMUP` untimed calls.
async fn time<F: AsyncFnMut()>(mut f: F) -> (Duration, Duration, Duration) {
    for _ in 0..WARMUP {
        f().await;
    }
    let mut t = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        f().await;
        t.push(start.elapsed());
    }
    t.sort();
    (t[RUNS / 2], t[0], t[RUNS - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn row(what: &str, mount: (Duration, Duration, Duration), direct: (Duration, Duration, Duration)) {
    println!(
        "{what:<44} {:>9} ({}–{})  {:>9} ({}–{})  {:>5.2}×",
        ms(mount.0),
        ms(mount.1),
        ms(mount.2),
        ms(direct.0),
        ms(direct.1),
        ms(direct.2),
        mount.0.as_secs_f64() / direct.0.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let fuse = Path::new("/dev/fuse").exists()
        && Command::new("fusermount3")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
    if !fuse {
        println!("mount bench: /dev/fuse or fusermount3 missing (Debian: apt-get install fuse3)");
        return;
    }
    let (_srv, line) = start(
        &["serve", "--listen", "tcp!127.0.0.1!0", "--no-shim"],
        "listening on",
    )
    .await;
    let addr = line.rsplit(' ').next().unwrap().to_string();
    let reg = Registry::open(&addr).await.unwrap();
    let pad = "x".repeat(40);
    let mut held = Vec::new();
    for i in 0..SERVICES {
        let attrs = Attributes::new([("proto", "styx"), ("n", &i.to_string()), ("pad", &pad)]);
        held.push(
            reg.register(&format!("tcp!host{i}!7000"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reg");
    std::fs::create_dir(&dir).unwrap();
    let (_mount, _) = start(
        &["mount", "-m", &addr, dir.to_str().unwrap()],
        "registry: mounted",
    )
    .await;
    let index = dir.join("index");
    let size = reg.find_raw("").await.unwrap().len();

    println!(
        "registry mount, {SERVICES} services ({size} bytes of index); medians of {RUNS} in ms (range)"
    );
    println!(
        "{:<44} {:>22}  {:>22}  {:>6}",
        "", "through the mount", "directly", "ratio"
    );
    // As cat reads: 128 KB at a time (the file says it is empty, as in Inferno).
    let through = time(async || {
        let mut f = std::fs::File::open(&index).unwrap();
        let mut buf = vec![0u8; 128 * 1024];
        let mut total = 0;
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        std::hint::black_box(total);
    })
    .await;
    let direct = time(async || {
        std::hint::black_box(reg.find_raw("").await.unwrap());
    })
    .await;
    row("read the whole index (read(2) / 9P)", through, direct);
    let parsed = time(async || {
        std::hint::black_box(Registry::new(&dir).await.unwrap().services().await.unwrap());
    })
    .await;
    let api = time(async || {
        std::hint::black_box(reg.services().await.unwrap());
    })
    .await;
    row("Registry::services (on the mount / over 9P)", parsed, api);
    let cat = time(async || {
        let out = Command::new("cat").arg(&index).output().unwrap();
        std::hint::black_box(out.stdout);
    })
    .await;
    let query = time(async || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_registry"))
            .args(["query", "-m", &addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(b"\n").unwrap();
        std::hint::black_box(c.wait_with_output().unwrap().stdout);
    })
    .await;
    row("cat index / registry query (processes)", cat, query);
    let new = dir.join("new");
    let mut n = 0;
    let mounted = time(async || {
        n += 1;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&new)
            .unwrap();
        f.write_all(format!("tcp!bench!{n} k v").as_bytes())
            .unwrap();
        drop(f);
    })
    .await;
    let attrs = Attributes::new([("k", "v")]);
    let rust = time(async || {
        n += 1;
        let r = reg
            .register(&format!("tcp!bench!{n}"), &attrs, false)
            .await
            .unwrap();
        drop(r);
    })
    .await;
    row("register and drop (open new, write, close)", mounted, rust);
    drop(held);
    let _ = Command::new("fusermount3").arg("-u").arg(&dir).status();
}
