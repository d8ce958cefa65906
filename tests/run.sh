#!/usr/bin/env bash
# The whole test suite: sets up the Python 9P peers (venvs under target/peers) and etcd, then runs
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/peers/setup.sh
# The etcd tests start a real three-member cluster: Debian's etcd-server (and etcdctl).
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            etcd-server etcd-client
    else
        echo "tests/run.sh: etcd is not installed: the etcd tests skip" \
            "(Debian: apt-get install etcd-server etcd-client)" >&2
    fi
fi
# The page of `serve --http` is checked in a real browser: Debian's chromium and chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            chromium chromium-driver
    else
        echo "tests/run.sh: chromium is not installed: the page test skips" \
            "(Debian: apt-get install chromium chromium-driver)" >&2
    fi
fi
# `registry mount` is tested on a real FUSE mount: Debian's fuse3 (fusermount3) and /dev/fuse.
if ! command -v fusermount3 >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fuse3
    else
        echo "tests/run.sh: fuse3 is not installed: the mount tests skip" \
            "(Debian: apt-get install fuse3)" >&2
    fi
fi
# `registry bench` measures ZooKeeper beside us: Debian's zookeeperd (and a Java runtime).
if [ ! -e /usr/share/java/zookeeper.jar ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zookeeperd
    else
        echo "tests/run.sh: zookeeperd is not installed: the bench runs without ZooKeeper" \
            "(Debian: apt-get install zookeeperd)" >&2
    fi
fi
# Benchmarks are not tests: they run (optimised, printing figures) with `cargo bench`.
cargo test --workspace --lib --bins --tests --examples --locked "$@"
cargo test --workspace --doc --locked "$@"
