"""Blocking file I/O stays off the plugin loop: a file that hangs on open (a FIFO without a
writer stands in for a hung NFS mount) must not stop other calls or the heartbeats."""
from __future__ import annotations

import asyncio
import os
import threading

from starlette.responses import FileResponse

from radical.edge.workers.call_runner import render


def test_file_response_read_does_not_block_the_loop(tmp_path) -> None:
    fifo = tmp_path / "hung"
    os.mkfifo(fifo)

    async def main() -> None:
        hung = asyncio.ensure_future(render("c1", FileResponse(fifo)))
        # the loop keeps running other work while the read hangs in a thread
        other = await asyncio.wait_for(render("c2", {"ok": True}), 5)
        assert other.status == 200
        await asyncio.wait_for(asyncio.sleep(0.01), 5)
        assert not hung.done()

        def writer() -> None:  # un-hang the "file system"
            with open(fifo, "wb") as fh:
                fh.write(b"finally")

        t = threading.Thread(target=writer)
        t.start()
        reply = await asyncio.wait_for(hung, 10)
        t.join(5)
        assert reply.status == 200 and reply.body_bytes() == b"finally"

    asyncio.run(main())
