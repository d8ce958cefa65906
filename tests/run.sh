#!/usr/bin/env bash
# The whole test suite: sets up the Python 9P peers (venvs under target/peers) and the real
# components the tests start (etcd, chromium, FUSE, ZooKeeper), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/peers/setup.sh

# need WHAT PACKAGES... -- TEST...: unless every TEST (a shell test) holds, installs the Debian
# PACKAGES with apt when run as root on Debian, and otherwise says which tests will skip.
updated=
need() {
    local what=$1 packages=()
    shift
    while [ "$1" != "--" ]; do packages+=("$1"); shift; done
    shift
    if eval "$*"; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        [ -n "$updated" ] || { apt-get update -qq; updated=1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
    else
        echo "tests/run.sh: ${packages[*]} not installed: $what (Debian: apt-get install ${packages[*]})" >&2
    fi
}

# The etcd tests start a real three-member cluster: Debian's etcd-server (and etcdctl).
need "the etcd tests skip" etcd-server etcd-client -- \
    'command -v etcd >/dev/null && command -v etcdctl >/dev/null'
# The page of `serve --http` is checked in a real browser: Debian's chromium and chromedriver.
need "the page test skips" chromium chromium-driver -- \
    'command -v chromium >/dev/null && command -v chromedriver >/dev/null'
# `registry mount` is tested on a real FUSE mount: Debian's fuse3 (fusermount3) and /dev/fuse.
need "the mount tests skip" fuse3 -- 'command -v fusermount3 >/dev/null'
# The partition test builds a network of namespaces and cuts it: iproute2 (ip, bridge).
need "the partition test skips" iproute2 -- 'command -v ip >/dev/null && command -v bridge >/dev/null'
# `registry bench` measures ZooKeeper beside us: Debian's zookeeperd (and a Java runtime).
need "the bench runs without ZooKeeper" zookeeperd -- '[ -e /usr/share/java/zookeeper.jar ]'

# Benchmarks are not tests: they run (optimised, printing figures) with `cargo bench`.
cargo test --workspace --lib --bins --tests --examples --locked "$@"
cargo test --workspace --doc --locked "$@"
