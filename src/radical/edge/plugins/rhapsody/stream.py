"""Output of running executable tasks, as it comes: `task_output` notifications.

Why: a task that runs for minutes should show its output while it runs (as psij jobs do),
not only in its final record. Quick tasks must not pay for it: nothing is sent during a
task's first `FIRST_DELAY` seconds, so a task that ends before that costs no extra message
(its final record carries the output, as before). After that, what arrived is sent at most
every `INTERVAL` seconds as ``{uid, stream, offset, data}`` (offset: characters of that
stream before `data`), up to `MAX_STREAMED` characters per stream; the rest is in the final
record. The text sent so far is also kept in the task dict (`stdout`/`stderr`), so `task/{uid}`
of a running task answers with the output up to its last message and a late viewer can
catch up.

Used from the event loop thread only (the backend's reader coroutines).
"""
from __future__ import annotations

import asyncio
import codecs
from typing import Callable

#: quiet period after the start: tasks ending sooner send no partial output at all
FIRST_DELAY = 0.5
#: shortest gap between two partial-output messages of one task
INTERVAL = 0.25
#: at most this many characters per stream are streamed (the final record has everything)
MAX_STREAMED = 1 << 20
#: largest piece read from a pipe at once
READ_BYTES = 64 * 1024

#: send(task, stream, offset, text)
Send = Callable[[dict, str, int, str], None]


class TaskOutput:
    """Collects one task's stdout/stderr and sends new text in throttled pieces."""

    def __init__(self, task: dict, send: Send | None, loop: asyncio.AbstractEventLoop) -> None:
        self.task = task
        self._send = send
        self._loop = loop
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace")
                          for s in ("stdout", "stderr")}
        self.text = {"stdout": [], "stderr": []}
        self.length = {"stdout": 0, "stderr": 0}
        self._sent = {"stdout": 0, "stderr": 0}
        self._timer: asyncio.TimerHandle | None = None
        self._not_before = loop.time() + FIRST_DELAY
        self.closed = False

    def feed(self, stream: str, data: bytes) -> None:
        text = self._decoders[stream].decode(data)
        if not text:
            return
        self.text[stream].append(text)
        self.length[stream] += len(text)
        self._schedule()

    def _schedule(self) -> None:
        if self._send is None or self._timer is not None or self.closed:
            return
        if all(self._sent[s] >= MAX_STREAMED for s in self._sent):
            return
        delay = max(0.0, self._not_before - self._loop.time())
        self._timer = self._loop.call_later(delay, self.flush)

    def flush(self) -> None:
        """Send what arrived since the last message (the timer calls this)."""
        self._timer = None
        if self.closed or self._send is None:
            return
        if all(self._sent[s] >= MAX_STREAMED for s in self._sent):
            return
        for stream in ("stdout", "stderr"):
            sent, total = self._sent[stream], min(self.length[stream], MAX_STREAMED)
            if total <= sent:
                continue
            # one string per flush (not per read): the output so far, for task/{uid}
            so_far = "".join(self.text[stream])
            self.text[stream] = [so_far]
            self.task[stream] = so_far[:MAX_STREAMED]
            self._send(self.task, stream, sent, so_far[sent:total])
            self._sent[stream] = total
        self._not_before = self._loop.time() + INTERVAL

    def finish(self) -> tuple[str, str]:
        """Stop sending; the complete stdout and stderr (the final record's)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for stream in ("stdout", "stderr"):
            tail = self._decoders[stream].decode(b"", final=True)
            if tail:
                self.text[stream].append(tail)
        return "".join(self.text["stdout"]), "".join(self.text["stderr"])


async def collect(proc: asyncio.subprocess.Process, out: TaskOutput) -> None:
    """Read the process's stdout and stderr until both close, then wait for its exit."""
    async def pump(reader: asyncio.StreamReader | None, stream: str) -> None:
        if reader is None:
            return
        while True:
            data = await reader.read(READ_BYTES)
            if not data:
                return
            out.feed(stream, data)

    await asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
    await proc.wait()
