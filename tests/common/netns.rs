//! A private network of Linux network namespaces, for tests that partition hosts the way a real
//! network does: packets silently lost, no reset, no FIN, no "no route to host".
//!
//! A [`Net`] is a "switch" namespace holding two bridges, the etcd network (10.231.1.0/24) and
//! the client network (10.231.2.0/24), and one namespace per [`Host`], plugged into either or
//! both by a veth pair. The addresses exist only inside these namespaces: no test traffic
//! touches the root namespace's network. Everything is named `regnet-PID-SERIAL-…`, so that
//! tests running at once (threads of one binary, or several binaries) never share a name, and
//! what a crashed run left behind can be told apart from what a live one holds.
//!
//! [`Net::cut`] disables the host's port on the bridge: the bridge then drops every frame from
//! and to that port, and nothing else changes — the host's interface stays up with its carrier,
//! so neither end learns anything but silence. Every host also knows every address's MAC
//! address by a permanent neighbour entry: with ARP, a cut longer than the neighbour timeouts
//! would make the kernel report EHOSTUNREACH to new connections (it does after about 50 s),
//! which a partition in a routed network does not.
//!
//! Needs root, iproute2 and (for [`NetEtcd`]) Debian's etcd-server and etcd-client; a test skips
//! without them, except under `REGISTRY_REQUIRE_PEERS=1` (CI), where it fails.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

/// The start of every namespace and scratch directory name this module makes.
const PREFIX: &str = "regnet-";

/// Where `ip netns` keeps the namespaces it names.
const NETNS_DIR: &str = "/run/netns";

/// The last byte of the first host's addresses (10.231.1.11 for the etcd network).
const FIRST_HOST: u8 = 11;

/// How many hosts a [`Net`] holds at most: every host gets a neighbour entry for each.
const MAX_HOSTS: u8 = 32;

/// The longest interface name Linux takes (IFNAMSIZ less the NUL).
const IFNAMSIZ: usize = 15;

/// Whether network namespaces can be made here (root, a working `ip netns add`) and etcd is
/// installed; says why a test skips when not (and fails under `REGISTRY_REQUIRE_PEERS=1`).
pub fn available() -> bool {
    let missing = missing();
    if let Some(why) = &missing {
        assert!(
            std::env::var_os("REGISTRY_REQUIRE_PEERS").is_none(),
            "{why}"
        );
        eprintln!("skipped: {why}");
    }
    missing.is_none()
}

/// What keeps [`available`] from being true, if anything.
fn missing() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root");
    }
    if !succeeds("etcd", &["--version"]) || !succeeds("etcdctl", &["version"]) {
        return Some("etcd is not installed (Debian: apt-get install etcd-server etcd-client)");
    }
    // Making one proves more than listing them: a container may lack CAP_SYS_ADMIN.
    let probe = format!("{PREFIX}{}-probe", std::process::id());
    let made = succeeds("ip", &["netns", "add", &probe]);
    let _ = succeeds("ip", &["netns", "del", &probe]);
    (!made).then_some("`ip netns add` fails (iproute2 missing, or no CAP_SYS_ADMIN)")
}

/// Whether `program ARGS` runs and succeeds, its output discarded.
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program ARGS` (`ip`, mostly), panicking with what it said if it fails: a network the
/// test cannot build is a broken test, not a skip.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip ARGS` inside namespace `netns` (`ip -n`), as [`run`] does.
fn ip_in(netns: &str, args: &[&str]) -> String {
    run("ip", &[&["-n", netns], args].concat())
}

/// Runs the `ip` commands in `lines` inside namespace `netns` with one process (`ip -batch`).
fn ip_batch(netns: &str, lines: &str) {
    let mut child = Command::new("ip")
        .args(["-n", netns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip");
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(lines.as_bytes()).expect("ip -batch input");
    drop(stdin);
    let out = child.wait_with_output().expect("ip -batch");
    assert!(
        out.status.success(),
        "ip -n {netns} -batch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sets the calling thread's network namespace to the one bound at `path`.
fn setns(path: &Path) -> std::io::Result<()> {
    let ns = File::open(path)?;
    // SAFETY: `ns` is an open namespace file for the duration of the call.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The path `ip netns` binds namespace `name` at.
fn ns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether `name` is `regnet-PID-…` for a PID that no longer runs: what a crashed run left.
fn orphaned(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let pid = rest.split('-').next().unwrap_or("");
    pid.parse::<u32>()
        .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// The names in directory `dir` that [`orphaned`] says a crashed run left.
fn orphans(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| orphaned(name))
        .collect()
}

/// Removes what crashed runs left: their namespaces, after killing whatever still runs in them
/// (a namespace lives as long as a process is in it; members normally died with their test by
/// `PR_SET_PDEATHSIG`), and their scratch directories.
fn sweep() {
    for name in orphans(Path::new(NETNS_DIR)) {
        let pids = Command::new("ip").args(["netns", "pids", &name]).output();
        let pids = pids.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        for pid in pids.unwrap_or_default().split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>()
                && pid != std::process::id() as i32
            {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = succeeds("ip", &["netns", "del", &name]);
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for name in orphans(tmp) {
        let _ = std::fs::remove_dir_all(tmp.join(name));
    }
}

/// A request to the spawner thread: a command and where to send the started child.
type SpawnRequest = (Command, Sender<std::io::Result<Child>>);

/// Starts `cmd` from a thread that lives as long as the test process: `PR_SET_PDEATHSIG` fires
/// when the thread that forked the child ends, and a test's own thread ends with the test.
fn spawn_from_spawner(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: std::sync::OnceLock<Sender<SpawnRequest>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, requests) = channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in requests {
                let _ = reply.send(cmd.spawn());
            }
        });
        tx
    });
    let (tx, rx) = channel();
    spawner.send((cmd, tx)).expect("the spawner thread runs");
    rx.recv().expect("the spawner answers")
}

/// The two networks a host can be plugged into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lan {
    Etcd,
    Client,
}

impl Lan {
    /// The third byte of the network's addresses (10.231.N.0/24).
    fn number(self) -> u8 {
        match self {
            Lan::Etcd => 1,
            Lan::Client => 2,
        }
    }

    /// The letter that ends the network's interface names.
    fn letter(self) -> char {
        match self {
            Lan::Etcd => 'e',
            Lan::Client => 'c',
        }
    }

    /// Host `host`'s address on this network.
    fn addr(self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.number(), host)
    }

    /// Host `host`'s MAC address on this network (locally administered), fixed so that every
    /// host can be told every other's in advance.
    fn mac(self, host: u8) -> String {
        format!("02:e7:00:00:{:02x}:{host:02x}", self.number())
    }
}

/// Which of a host's networks [`Net::cut`] and [`Net::heal`] act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The etcd network (members' peer and client traffic).
    Etcd,
    /// The client network.
    Client,
    /// Every network the host is on.
    All,
}

impl Side {
    /// The networks this side names.
    fn lans(self) -> &'static [Lan] {
        match self {
            Side::Etcd => &[Lan::Etcd],
            Side::Client => &[Lan::Client],
            Side::All => &[Lan::Etcd, Lan::Client],
        }
    }
}

/// A host: a network namespace (loopback up) with an address on each network it is on.
#[derive(Clone, Debug)]
pub struct Host {
    /// The name the test gave it.
    pub name: String,
    /// The namespace's name, as `ip netns` knows it.
    pub netns: String,
    /// Its address on the etcd network, if it is on it.
    pub etcd_ip: Option<Ipv4Addr>,
    /// Its address on the client network, if it is on it.
    pub client_ip: Option<Ipv4Addr>,
    /// The last byte of its addresses; names its interfaces.
    index: u8,
}

impl Host {
    /// Whether the host is on network `lan`.
    fn on(&self, lan: Lan) -> bool {
        match lan {
            Lan::Etcd => self.etcd_ip.is_some(),
            Lan::Client => self.client_ip.is_some(),
        }
    }
}

/// The network: namespaces, the processes started in them and scratch directories, all
/// removed when dropped.
pub struct Net {
    /// `regnet-PID-SERIAL`: starts every namespace and the scratch directory.
    tag: String,
    /// PID (hex) and serial: starts every interface name, within IFNAMSIZ.
    ifx: String,
    /// The switch namespace, holding the bridges.
    switch: String,
    /// The hosts' namespaces.
    hosts: Vec<String>,
    /// Processes started by [`Net::spawn`], killed when dropped.
    children: Vec<Child>,
    /// The switch ports disabled by [`Net::cut`].
    cuts: Mutex<HashSet<String>>,
    /// Scratch directories live under here (target/tmp/regnet-PID-SERIAL).
    scratch: PathBuf,
}

impl Net {
    /// Removes what crashed runs left, then makes the switch namespace with its two bridges.
    pub fn new() -> Net {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        sweep();
        let (pid, serial) = (std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed));
        let tag = format!("{PREFIX}{pid}-{serial}");
        let net = Net {
            switch: format!("{tag}-switch"),
            scratch: Path::new(env!("CARGO_TARGET_TMPDIR")).join(&tag),
            tag,
            ifx: format!("{pid:x}n{serial}"),
            hosts: Vec::new(),
            children: Vec::new(),
            cuts: Mutex::new(HashSet::new()),
        };
        run("ip", &["netns", "add", &net.switch]);
        net.add_bridge(Lan::Etcd);
        net.add_bridge(Lan::Client);
        net
    }

    /// Makes `lan`'s bridge in the switch namespace (no STP: ports forward as soon as they are
    /// up, and take the states [`Net::cut`] gives them).
    fn add_bridge(&self, lan: Lan) {
        let bridge = self.ifname('b', 0, lan);
        ip_in(
            &self.switch,
            &["link", "add", "name", &bridge, "type", "bridge"],
        );
        ip_in(&self.switch, &["link", "set", "dev", &bridge, "up"]);
    }

    /// The start of every namespace name this network made (for checking they are gone).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Interface `kind` of host `host` on `lan`: `h` the host's end, `s` the switch's end, `b`
    /// the bridge. The pid makes it unique among test processes, as the rules ask, though each
    /// lives in a namespace of this network only.
    fn ifname(&self, kind: char, host: u8, lan: Lan) -> String {
        let name = format!("{}{kind}{host}{}", self.ifx, lan.letter());
        assert!(name.len() <= IFNAMSIZ, "interface name {name} too long");
        name
    }

    /// A new host named `name` (a short word: it ends the namespace's name), plugged into the
    /// etcd network, the client network, or both.
    pub fn host(&mut self, name: &str, etcd_net: bool, client_net: bool) -> Host {
        let count = u8::try_from(self.hosts.len()).unwrap_or(u8::MAX);
        assert!(count < MAX_HOSTS, "at most {MAX_HOSTS} hosts");
        let netns = format!("{}-{name}", self.tag);
        run("ip", &["netns", "add", &netns]);
        self.hosts.push(netns.clone());
        ip_in(&netns, &["link", "set", "dev", "lo", "up"]);
        let index = FIRST_HOST + count;
        let plug = |on: bool, lan| on.then(|| self.plug(&netns, index, lan));
        Host {
            name: name.to_string(),
            etcd_ip: plug(etcd_net, Lan::Etcd),
            client_ip: plug(client_net, Lan::Client),
            netns,
            index,
        }
    }

    /// Plugs namespace `netns` into `lan` as host `index`: a veth pair made in the switch
    /// namespace, one end (with the host's fixed MAC and address) moved straight into the
    /// host's namespace, the other a port of the bridge. Nothing passes through the root
    /// namespace.
    fn plug(&self, netns: &str, index: u8, lan: Lan) -> Ipv4Addr {
        let (inside, port) = (self.ifname('h', index, lan), self.ifname('s', index, lan));
        let (sw, mac) = (self.switch.as_str(), lan.mac(index));
        let host_end = ["name", &inside, "address", &mac, "netns", netns];
        let link_add = [
            &["link", "add"],
            &host_end[..],
            &["type", "veth", "peer", "name", &port],
        ];
        ip_in(sw, &link_add.concat());
        let bridge = self.ifname('b', 0, lan);
        ip_in(sw, &["link", "set", "dev", &port, "master", &bridge, "up"]);
        let addr = lan.addr(index);
        let cidr = format!("{addr}/24");
        ip_in(netns, &["addr", "add", &cidr, "dev", &inside]);
        ip_in(netns, &["link", "set", "dev", &inside, "up"]);
        neighbours(netns, &inside, lan, index);
        addr
    }

    /// Cuts `host` off network(s) `side`: its bridge ports stop forwarding, so every frame from
    /// or to it is dropped without a word to either end (see the module's comment).
    pub fn cut(&self, host: &Host, side: Side) {
        self.set_ports(host, side, false);
    }

    /// Undoes [`Net::cut`]: the ports forward again.
    pub fn heal(&self, host: &Host, side: Side) {
        self.set_ports(host, side, true);
    }

    /// Whether `host` is cut off any network of `side`.
    pub fn is_cut(&self, host: &Host, side: Side) -> bool {
        let cuts = self.cuts.lock().unwrap();
        side.lans()
            .iter()
            .any(|&lan| cuts.contains(&self.ifname('s', host.index, lan)))
    }

    /// Sets the state of `host`'s bridge ports on `side`: forwarding or disabled. With STP off,
    /// the bridge takes the state as given and leaves the link itself alone.
    fn set_ports(&self, host: &Host, side: Side, forwarding: bool) {
        let lans: Vec<Lan> = side
            .lans()
            .iter()
            .copied()
            .filter(|&l| host.on(l))
            .collect();
        assert!(!lans.is_empty(), "{} is not on {side:?}", host.name);
        for lan in lans {
            let port = self.ifname('s', host.index, lan);
            self.port_state(&port, if forwarding { "forwarding" } else { "disabled" });
            let mut cuts = self.cuts.lock().unwrap();
            if forwarding {
                cuts.remove(&port);
            } else {
                cuts.insert(port);
            }
        }
    }

    /// Sets bridge port `port` to `state` with `bridge link set` and reads it back: `ip link set
    /// … type bridge_slave state 0` reports success yet leaves a port with carrier forwarding,
    /// and a cut that silently did not happen would let a test pass for nothing.
    fn port_state(&self, port: &str, state: &str) {
        let number = if state == "forwarding" { "3" } else { "0" };
        let sw = self.switch.as_str();
        run(
            "bridge",
            &["-n", sw, "link", "set", "dev", port, "state", number],
        );
        let shown = run("bridge", &["-n", sw, "link", "show", "dev", port]);
        assert!(
            shown.contains(&format!(" state {state} ")),
            "{port} not {state}: {shown}"
        );
    }

    /// `program` to be run inside `host`'s namespace: the child joins it (setns) between fork
    /// and exec, so its pid is the program's own and nothing else about it changes.
    pub fn command(&self, host: &Host, program: impl AsRef<OsStr>) -> Command {
        let ns = File::open(ns_path(&host.netns)).expect("the host's namespace");
        let mut cmd = Command::new(program);
        // SAFETY: setns is a plain system call, safe between fork and exec; `ns` lives in the
        // closure, so the descriptor is open (and closed on exec).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        cmd
    }

    /// Starts `cmd` (made by [`Net::command`]) as a process of this network: killed when the
    /// network is dropped, and by the kernel if the test process dies first (PR_SET_PDEATHSIG).
    /// The child is returned for its pid and pipes.
    pub fn spawn(&mut self, mut cmd: Command) -> &mut Child {
        // SAFETY: prctl is async-signal-safe; it only asks for SIGKILL when the parent thread
        // (the spawner, alive as long as the test process) goes.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = spawn_from_spawner(cmd).expect("the command starts");
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Kills process `pid` (started by [`Net::spawn`]) with SIGKILL and waits for it.
    pub fn kill(&mut self, pid: u32) {
        let at = self.children.iter().position(|c| c.id() == pid);
        let mut child = self.children.remove(at.expect("a process of this network"));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Moves the calling thread into `host`'s namespace; threads it creates afterwards (a tokio
    /// runtime's, say) start there too. It stays there: enter from a thread of the test's own.
    pub fn enter(&self, host: &Host) -> std::io::Result<()> {
        setns(&ns_path(&host.netns))
    }

    /// A fresh scratch directory `name`, removed when the network is dropped.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.scratch.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }
}

impl Default for Net {
    fn default() -> Net {
        Net::new()
    }
}

/// Tells host `own` on `lan` (interface `dev` in `netns`) every other host's MAC address for
/// good, so that no cut ever turns into a failed ARP and an EHOSTUNREACH.
fn neighbours(netns: &str, dev: &str, lan: Lan, own: u8) {
    let lines: String = (FIRST_HOST..FIRST_HOST + MAX_HOSTS)
        .filter(|&i| i != own)
        .map(|i| {
            let (addr, mac) = (lan.addr(i), lan.mac(i));
            format!("neigh replace {addr} lladdr {mac} dev {dev} nud permanent\n")
        })
        .collect();
    ip_batch(netns, &lines);
}

impl Drop for Net {
    /// Kills the processes, then removes the scratch directories and the namespaces (with them
    /// go the veths and bridges).
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
        for netns in self.hosts.iter().chain([&self.switch]) {
            let _ = succeeds("ip", &["netns", "del", netns]);
        }
    }
}

/// An etcd cluster on the etcd network: one member per host, named `etcd0`, `etcd1`, …, with
/// client port 2379 and peer port 2380 on its address.
pub struct NetEtcd {
    /// The members' hosts, in member order.
    pub members: Vec<Host>,
    /// The members' process ids (for [`Net::kill`]).
    pub pids: Vec<u32>,
}

/// etcd's client port, on each member's address.
pub const ETCD_CLIENT_PORT: u16 = 2379;

impl NetEtcd {
    /// Starts `n` members, with the short heartbeat and election timeout that make a failover
    /// take a fraction of a second, and waits until a write goes through.
    pub fn start(net: &mut Net, n: usize) -> NetEtcd {
        let members: Vec<Host> = (0..n)
            .map(|i| net.host(&format!("etcd{i}"), true, false))
            .collect();
        let initial = members
            .iter()
            .enumerate()
            .map(|(i, m)| format!("m{i}=http://{}:2380", m.etcd_ip.expect("on etcd")))
            .collect::<Vec<_>>()
            .join(",");
        let dir = net.scratch("etcd");
        let pids = (0..n)
            .map(|i| {
                let cmd = member_command(net, &members[i], i, &initial, &dir);
                net.spawn(cmd).id()
            })
            .collect();
        let etcd = NetEtcd { members, pids };
        etcd.wait_healthy(net);
        etcd
    }

    /// Member `i`'s client address, `IP:2379`.
    pub fn endpoint(&self, i: usize) -> String {
        let ip = self.members[i].etcd_ip.expect("on etcd");
        format!("{ip}:{ETCD_CLIENT_PORT}")
    }

    /// The client addresses, comma-separated, as `registry serve --etcd` takes them.
    pub fn endpoints(&self) -> String {
        (0..self.members.len())
            .map(|i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `etcdctl ARGS` (API v3, short timeouts) in member `i`'s namespace against member
    /// `i` alone; its output if it succeeded. A cut member still reaches itself, so this
    /// asks what that member can do on its own side of a partition.
    pub fn etcdctl_on(&self, net: &Net, i: usize, args: &[&str]) -> Option<String> {
        let out = net
            .command(&self.members[i], "etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint(i)))
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

    /// Runs `etcdctl ARGS` on the members in turn, those not cut off first, until one succeeds.
    pub fn etcdctl(&self, net: &Net, args: &[&str]) -> Option<String> {
        let mut order: Vec<usize> = (0..self.members.len()).collect();
        order.sort_by_key(|&i| net.is_cut(&self.members[i], Side::Etcd));
        order
            .into_iter()
            .find_map(|i| self.etcdctl_on(net, i, args))
    }

    /// Waits (up to a minute) until a write goes through.
    fn wait_healthy(&self, net: &Net) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.etcdctl(net, &["put", "/health", "ok"]).is_none() {
            assert!(Instant::now() < deadline, "etcd never became healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Member `i`'s own id and the leader's id as it sees them, from `endpoint status`.
    fn status(&self, net: &Net, i: usize) -> Option<(String, String)> {
        let out = self.etcdctl_on(net, i, &["endpoint", "status", "-w", "fields"])?;
        Some((field(&out, "MemberID")?, field(&out, "Leader")?))
    }

    /// The index of the leader: the member that says it leads and that a majority of the
    /// members not cut off follow (a cut leader may believe in itself a little longer).
    pub fn leader(&self, net: &Net) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen: Vec<(usize, String, String)> = (0..self.members.len())
                .filter(|&i| !net.is_cut(&self.members[i], Side::Etcd))
                .filter_map(|i| self.status(net, i).map(|(me, leader)| (i, me, leader)))
                .collect();
            let majority = |id: &String| 2 * seen.iter().filter(|s| &s.2 == id).count();
            let leader = seen
                .iter()
                .find(|(_, me, leader)| me == leader && majority(me) > self.members.len());
            if let Some((i, _, _)) = leader {
                return *i;
            }
            assert!(Instant::now() < deadline, "no etcd leader");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The value of `"KEY" : VALUE` in etcdctl's `-w fields` output.
fn field(out: &str, key: &str) -> Option<String> {
    let quoted = format!("\"{key}\"");
    let line = out.lines().find(|l| l.starts_with(&quoted))?;
    let value = line.split(" : ").nth(1)?.trim().trim_matches('"');
    Some(value.to_string())
}

/// The command that runs member `i` on `host`, its data under `dir`.
fn member_command(net: &Net, host: &Host, i: usize, initial: &str, dir: &Path) -> Command {
    let ip = host.etcd_ip.expect("on etcd");
    let client = format!("http://{ip}:{ETCD_CLIENT_PORT}");
    let peer = format!("http://{ip}:2380");
    let mut cmd = net.command(host, "etcd");
    let name = format!("m{i}");
    super::etcd::member_args(&mut cmd, &name, &dir.join(&name), &client, &peer, initial);
    cmd
}
