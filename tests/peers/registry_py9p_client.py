"""Drives OUR registry server with the independent `python-9p` client, at the raw file level.

Usage: python registry_py9p_client.py PORT
Checks: two opens of `new` on one connection, `find` filters per fid, `event` with a held
read, `concurrent read for event fid` and Tflush. Prints one line per check and exits non-zero
on the first failure.
"""

import socket
import sys

import checks
import py9p
from checks import check, expect_error
from py9p import (
    Client, Tattach, Tflush, Topen, Tread, Twalk, Twrite, Tversion,
    Rattach, Rerror, Rflush, Ropen, Rread, Rversion, Rwalk, Rwrite, read_message, write_message,
)

PORT = int(sys.argv[1])


def read_all(c, fid):
    out, offset = b"", 0
    while True:
        data = c.read(fid, 8192 - 24, offset)
        if not data:
            return out.decode()
        out += data
        offset += len(data)


c = Client.connect_tcp("127.0.0.1", PORT, timeout=20)
rv = c.negotiate()
check(rv.version == "9P2000", f"version {rv.version}")
c.attach(1, uname="glenda")

# Two opens of `new` on one connection: each open is a service of its own.
c.walk(1, 2, "new")
q2, _ = c.open(2, py9p.OWRITE)
c.walk(1, 3, "new")
q3, _ = c.open(3, py9p.OWRITE)
check(q2.path == 0x5 and q3.path == 0x15, f"open of new gives service qids {q2.path:#x} {q3.path:#x}")
check(c.write(2, b"tcp!h!1 proto styx auth none", 0) == 28, "register tcp!h!1")
check(c.write(3, b"tcp!h!2 proto styx auth infpk1", 0) == 30, "register tcp!h!2")
c.walk(1, 4, "index")
c.open(4, py9p.OREAD)
idx = read_all(c, 4)
check(idx == "tcp!h!1 auth none proto styx\ntcp!h!2 auth infpk1 proto styx\n", f"index {idx!r}")
expect_error(lambda: c.write(3, b"odd", 0), "odd attribute/value pairs", "odd update")

# find: one filter per open fid.
c.walk(1, 5, "find")
c.open(5, py9p.ORDWR)
c.walk(1, 6, "find")
c.open(6, py9p.ORDWR)
c.write(5, b"auth none", 0)
c.write(6, b"auth *", 0)
f5, f6 = read_all(c, 5), read_all(c, 6)
check(f5 == "tcp!h!1 auth none proto styx\n", f"find auth=none {f5!r}")
check(f6.count("\n") == 2, f"find auth=* {f6!r}")
c.write(5, b"", 0)
check(read_all(c, 5).count("\n") == 2, "empty write clears the filter")

# Clunking the creating fid unregisters.
c.clunk(2)
check(read_all(c, 4) == "tcp!h!2 auth infpk1 proto styx\n", "clunk of new's fid unregisters")
expect_error(lambda: c.walk(1, 7, "tcp!h!1"), "file does not exist", "walk to the removed service")
c.clunk(3)  # the last registration goes now, before the event fid below is opened
check(read_all(c, 4) == "", "index empty")
c.close()

# event, on a raw connection so that every message is seen.
s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
write_message(s, Tversion(msize=8192, version="9P2000"))
check(isinstance(read_message(s), Rversion), "raw version")
write_message(s, Tattach(fid=1, uname="glenda", tag=1))
check(isinstance(read_message(s), Rattach), "raw attach")
write_message(s, Twalk(fid=1, newfid=2, wname=("event",), tag=1))
check(isinstance(read_message(s), Rwalk), "walk event")
write_message(s, Topen(fid=2, mode=0, tag=1))
check(isinstance(read_message(s), Ropen), "open event")
write_message(s, Tread(fid=2, offset=0, count=100, tag=5))
write_message(s, Tread(fid=2, offset=0, count=100, tag=6))
m = read_message(s)
check(isinstance(m, Rerror) and m.tag == 6 and m.ename == "concurrent read for event fid",
      f"second read on the event fid: {m}")
write_message(s, Tflush(oldtag=5, tag=7))
m = read_message(s)
check(isinstance(m, Rflush) and m.tag == 7, f"Rflush, got {m}")
# A change, made on the same connection: the flushed read must stay silent, a new one reports.
write_message(s, Twalk(fid=1, newfid=3, wname=("new",), tag=1))
check(isinstance(read_message(s), Rwalk), "walk new")
write_message(s, Topen(fid=3, mode=1, tag=1))
check(isinstance(read_message(s), Ropen), "open new")
write_message(s, Twrite(fid=3, offset=0, data=b"tcp!h!3", tag=1))
m = read_message(s)
check(isinstance(m, Rwrite) and m.tag == 1, f"register tcp!h!3: {m}")
write_message(s, Tread(fid=2, offset=0, count=100, tag=8))
m = read_message(s)
check(isinstance(m, Rread) and m.tag == 8 and m.data == b"00000005\n", f"event after flush: {m}")
s.close()
print(f"driver done: {checks.count} checks")
