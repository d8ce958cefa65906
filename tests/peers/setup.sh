#!/usr/bin/env bash
# Creates one venv per independent 9P peer under target/peers/<name>/ (several of these
# packages install a module named `py9p`, so they cannot share one environment).
# Idempotent: a venv whose package already imports is left alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${REGISTRY_PEERS_DIR:-$root/target/peers}"
mkdir -p "$dir"
# Pinned, so that a new release of a peer cannot change what CI proves.
for spec in python-9p==0.1.0 p9fs==0.0.4 aio9p==0.3.3; do
    pkg="${spec%%==*}"
    venv="$dir/$pkg"
    if [ -x "$venv/bin/python" ] && [ -f "$venv/.installed" ]; then
        echo "peers: $pkg already installed in $venv"
        continue
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
    touch "$venv/.installed"
    echo "peers: installed $pkg in $venv"
done
