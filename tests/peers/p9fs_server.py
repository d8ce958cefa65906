"""Starts the 9P2000 file server of the `p9fs` package (its module `py9p`, the server behind
`python -m py9p -w -p PORT -a 127.0.0.1 -r DIR`) on a free loopback port.

Usage: python p9fs_server.py DIR
Prints `PORT <n>` once listening, then serves DIR read-write until killed. The stock command
line needs a fixed port; this launcher binds port 0 so that tests can run in parallel.
"""

import sys

from py9p import py9p
from py9p.__main__ import LocalFs

root = sys.argv[1]
srv = py9p.Server(listen=("127.0.0.1", 0), chatty=False, dotu=False)
srv.mount(LocalFs(root, 1, 0))
print("PORT", srv.sock.getsockname()[1], flush=True)
srv.serve()
