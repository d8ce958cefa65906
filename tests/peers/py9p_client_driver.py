"""Drives OUR 9P server with the independent `python-9p` client (plan9port's codec).

Usage: python py9p_client_driver.py PORT
The server serves the test ramfs (tests/common/ramfs.rs): /hello, /dir/, /block.
Prints one line per check and exits non-zero on the first failure.
"""

import socket
import sys

import checks
import py9p
from checks import check, expect_error
from py9p import (
    Client, Tattach, Tclunk, Tflush, Topen, Tread, Tversion, Twalk,
    Rflush, Rclunk, Rversion, Rattach, Rwalk, Ropen, read_message, write_message,
)

PORT = int(sys.argv[1])


def dont_touch_stat(name):
    """A Twstat entry that changes only the name (stat(5): ~0 and "" mean don't touch).
    Built by hand: the library's Dir refuses a length of ~0."""
    import struct
    n = name.encode()
    body = struct.pack("<HIBIQIIIQ", 0xFFFF, 0xFFFFFFFF, 0xFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF,
                       0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
    body += struct.pack("<H", len(n)) + n + b"\0\0" * 3
    return struct.pack("<H", len(body)) + body


def read_dir(c, fid):
    names, offset = [], 0
    while True:
        data = c.read(fid, 8192 - 24, offset)
        if not data:
            return names
        offset += len(data)
        while data:
            n = int.from_bytes(data[:2], "little") + 2
            names.append(py9p.decode_dir(data[:n]).name)
            data = data[n:]


c = Client.connect_tcp("127.0.0.1", PORT, timeout=20)
rv = c.negotiate()
check(rv.version == "9P2000" and c.msize == 8192, f"version {rv.version} msize {c.msize}")
root = c.attach(1, uname="glenda")
check(root.type & py9p.QTDIR, "attach gives a directory qid")

qids = c.walk(1, 2, "hello")
check(len(qids) == 1, "walk hello")
qid, iounit = c.open(2, py9p.OREAD)
check(c.read(2, 100, 0) == b"hello, world\n", "read hello")
check(c.read(2, 100, 7) == b"world\n", "read at offset")
st = c.stat(2)
check(st.name == "hello" and st.length == 13, f"stat {st}")

# The same file open on two fids at once.
c.walk(1, 3, "hello")
c.open(3, py9p.OREAD)
check(c.read(3, 5, 0) == b"hello" and c.read(2, 5, 0) == b"hello", "two fids, one file")

# Clone (walk of no names), create, write, read back, wstat rename.
c.walk(1, 4, [])
c.create(4, "made", 0o644, py9p.ORDWR)
check(c.write(4, b"written by python", 0) == 17, "write")
check(c.read(4, 100, 0) == b"written by python", "read back")
c.wstat(4, dont_touch_stat("renamed"))
check(c.stat(4).name == "renamed", "wstat rename")
c.clunk(4)

c.walk(1, 5, [])
c.open(5, py9p.OREAD)
names = sorted(read_dir(c, 5))
check(names == ["block", "dir", "hello", "renamed"], f"directory read {names}")
c.clunk(5)

# Inferno's diagnostics, verbatim.
expect_error(lambda: c.walk(1, 6, "nope"), "file does not exist", "walk to a missing file")
expect_error(lambda: c.attach(1, uname="glenda"), "fid already in use", "attach on a used fid")
expect_error(lambda: c.clunk(99), "bad fid", "clunk of an unknown fid")
c.walk(1, 7, "dir")
expect_error(lambda: c.read(7, 10, 0), "read/write -- on non open fid", "read of an unopened fid")
expect_error(lambda: c.walk(2, 8, []), "fid already opened", "walk of an open fid")
expect_error(lambda: c.write(2, b"x", 0), "read/write -- not open in suitable mode", "write to OREAD fid")

# Partial walk: Rwalk with fewer qids, newfid not created.
qids = c.walk(1, 9, ["dir", "nope"])
check(len(qids) == 1, "partial walk returns one qid")
expect_error(lambda: c.clunk(9), "bad fid", "partial walk leaves newfid unset")

# Many requests in flight: threads share the multiplexed client, each on fids of its own.
import threading

results = []


def worker(n):
    fid = 100 + n
    c.walk(1, fid, "hello")
    c.open(fid, py9p.OREAD)
    ok = all(c.read(fid, 5, 7) == b"world" for _ in range(20))
    c.clunk(fid)
    results.append(ok)


threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join(20)
check(len(results) == 16 and all(results), "16 threads reading at once")

# Remove.
c.walk(1, 10, "renamed")
c.remove(10)
expect_error(lambda: c.walk(1, 11, "renamed"), "file does not exist", "removed file is gone")
c.close()

# Flush, on a raw connection so that every message is seen.
s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
write_message(s, Tversion(msize=8192, version="9P2000.u"))
rv = read_message(s)
check(isinstance(rv, Rversion) and rv.version == "9P2000", f"9P2000.u answered {rv}")
write_message(s, Tattach(fid=1, uname="glenda", tag=1))
check(isinstance(read_message(s), Rattach), "raw attach")
write_message(s, Twalk(fid=1, newfid=2, wname=("block",), tag=1))
check(isinstance(read_message(s), Rwalk), "raw walk block")
write_message(s, Topen(fid=2, mode=0, tag=1))
check(isinstance(read_message(s), Ropen), "raw open block")
write_message(s, Tread(fid=2, offset=0, count=10, tag=5))
write_message(s, Tflush(oldtag=5, tag=6))
m = read_message(s)
check(isinstance(m, Rflush) and m.tag == 6, f"Rflush first, got {m}")
# Tag 5 is free again; its old read must never be answered.
write_message(s, Tclunk(fid=2, tag=5))
m = read_message(s)
check(isinstance(m, Rclunk) and m.tag == 5, f"tag reused after Rflush, got {m}")
write_message(s, Tflush(oldtag=77, tag=7))
m = read_message(s)
check(isinstance(m, Rflush) and m.tag == 7, "flush of an unknown tag")
s.close()
print(f"driver done: {checks.count} checks")
