"""Starts the example 9P2000 server of the `aio9p` package (aio9p.example.simple, an in-memory
file tree, one per connection) on a free loopback TCP port.

Usage: python aio9p_server.py
Prints `PORT <n>` once listening, then serves until killed.

Two changes to the stock example, both in this launcher:
* a file named `block` whose reads never complete, so that a client's Tflush has something
  to cancel (aio9p cancels the request's task and answers Rflush);
* errors are answered with the 9P2000 dialect's own Rerror (text only): the example's
  errhandler appends a 9P2000.u errno field to Rerror, which a 9P2000 peer must reject.
"""

import asyncio

from aio9p.dialect import Py9P2000
from aio9p.example.simple import Simple9P2000
from aio9p.protocol import Py9PServer


class Served(Simple9P2000):
    errhandler = Py9P2000.errhandler

    async def read(self, fid, offset, count):
        qid = self._fid.get(fid)
        stat = self._stat.get(qid)
        if stat is not None and stat.p9name in (b"block", "block"):
            await asyncio.Event().wait()
        return await super().read(fid, offset, count)


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Py9PServer(Served(65535)), "127.0.0.1", 0)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
