"""A function-task worker process: runs the Python function tasks the edge hands it.

Started by `procpool.WorkerPool` as ``python -c ...`` with the protocol on its stdin/stdout
(moved to private fds at start-up, so a task's ``print`` goes to stderr, the edge's log,
and cannot corrupt the protocol).  A task that calls ``os._exit``, segfaults or leaks kills
this process, not the edge; the edge blames the task it was running and starts a new one.

Protocol: frames of ``4-byte big-endian length + pickle``.
Edge -> worker: ``("run", [(seq, path, fn_blob, args, kwargs, args_blob, kwargs_blob)])``
(``path``: an allow-listed import path the edge already checked; ``*_blob``: pickles the
edge accepted from an authorised caller — unpickled here, never in the edge) and
``("skip", [seq, ...])`` (cancelled before they started).
The seq of the task running now is also stored in a shared 8-byte page (fd ``$RADICAL_EDGE_WORKER_SLOT_FD``,
mapped by both; ``-seq`` once it finished): when this process dies the edge knows which task killed it.
Worker -> edge: ``[(seq, ok, value)]``; ``ok`` True: the return value made of plain data
only (anything else becomes ``(REPR_MARK, repr)``), so the edge can load it with an
unpickler that refuses every class; ``ok`` False: ``(exception type, message, traceback)``.
"""
from __future__ import annotations

import asyncio
import mmap
import os
import pickle
import pkgutil
import select
import struct
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable

HEADER = struct.Struct(">I")
SLOT = struct.Struct("<q")
#: names the shared page's fd in the worker
SLOT_ENV = "RADICAL_EDGE_WORKER_SLOT_FD"
#: marks a return value that only survives as its repr
REPR_MARK = "\x00radical.edge:repr"
#: results are sent at the latest when this many are pending, or when the queue ran empty
FLUSH_COUNT = 512
#: ... or when the oldest pending result is this old (a quick task ahead of a slow one)
FLUSH_AGE = 0.005
_PLAIN = frozenset({type(None), bool, int, float, str, bytes})
_MAX_DEPTH = 64


def plain(value: Any, depth: int = 0) -> Any:
    """`value` if it is plain data (loadable by a class-free unpickler), else a repr marker."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if depth < _MAX_DEPTH:
        if kind is list or kind is tuple:
            items = [plain(v, depth + 1) for v in value]
            return items if kind is list else tuple(items)
        if kind is dict:
            return {plain(k, depth + 1): plain(v, depth + 1) for k, v in value.items()}
        if kind is bytearray:
            return bytes(value)
        tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
        if callable(tolist) and type(value).__module__.startswith("numpy"):
            try:
                return plain(tolist(), depth + 1)
            except Exception:
                pass
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__
        text = f"<unrepresentable {kind.__name__}: {exc}>"
    return (REPR_MARK, text) if depth == 0 else text


def _call(func: Callable, args: Any, kwargs: Any) -> Any:
    if asyncio.iscoroutinefunction(func):
        return asyncio.run(func(*args, **kwargs))
    result = func(*args, **kwargs)
    if asyncio.iscoroutine(result):
        return asyncio.run(result)
    return result


class Worker:
    """The worker's loop: read batches, run them in order, send results back in batches."""

    def __init__(self, rfd: int, wfd: int, slot: mmap.mmap | None = None) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.slot = slot
        self.buf = bytearray()
        self.queue: deque[tuple] = deque()
        self.skip: set[int] = set()
        self.cache: dict[str, Callable] = {}
        self.results: list[tuple] = []
        self.oldest = 0.0
        self.lock = threading.Lock()
        self.wake = threading.Event()

    # -- frames ---------------------------------------------------------------------------
    def _fill(self, n: int) -> bool:
        while len(self.buf) < n:
            chunk = os.read(self.rfd, max(1 << 16, n - len(self.buf)))
            if not chunk:
                return False
            self.buf += chunk
        return True

    def _frame_ready(self) -> bool:
        if len(self.buf) >= 4 and len(self.buf) >= 4 + HEADER.unpack_from(self.buf)[0]:
            return True
        return False

    def read_frame(self) -> Any:
        if not self._fill(4):
            raise EOFError
        (size,) = HEADER.unpack_from(self.buf)
        if not self._fill(4 + size):
            raise EOFError
        data = bytes(self.buf[4:4 + size])
        del self.buf[:4 + size]
        return pickle.loads(data)

    def poll(self) -> None:
        """Take frames that arrived meanwhile (skips, more work) without blocking."""
        while True:
            if not self._frame_ready():
                if not select.select([self.rfd], [], [], 0)[0]:
                    return
                chunk = os.read(self.rfd, 1 << 16)
                if not chunk:
                    raise EOFError
                self.buf += chunk
                if not self._frame_ready():
                    continue
            self.take(self.read_frame())

    def take(self, msg: Any) -> None:
        kind, items = msg
        if kind == "run":
            self.queue.extend(items)
        elif kind == "skip":
            self.skip.update(items)

    def flush(self) -> None:
        with self.lock:
            results, self.results = self.results, []
            if not results:
                return
            data = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(HEADER.pack(len(data)) + data)
            while view:
                view = view[os.write(self.wfd, view):]

    def _flusher(self) -> None:
        """Sends results that wait behind a slow task (the main thread is busy running it)."""
        while True:
            self.wake.wait()
            time.sleep(FLUSH_AGE)
            with self.lock:
                stale = self.results and time.monotonic() - self.oldest >= FLUSH_AGE
                if not self.results:
                    self.wake.clear()
            if stale:
                self.flush()

    # -- running --------------------------------------------------------------------------
    def resolve(self, path: str) -> Callable:
        func = self.cache.get(path)
        if func is None:
            func = self.cache[path] = pkgutil.resolve_name(path)
        return func

    def run_one(self, item: tuple) -> tuple:
        seq, path, fn_blob, args, kwargs, args_blob, kwargs_blob = item
        try:
            func = self.resolve(path) if path is not None else pickle.loads(fn_blob)
            if args_blob is not None:
                args = pickle.loads(args_blob)
            if kwargs_blob is not None:
                kwargs = pickle.loads(kwargs_blob)
            value = _call(func, args or (), kwargs or {})
            if type(value) not in _PLAIN:
                value = plain(value)
            return (seq, True, value)
        except BaseException as exc:  # SystemExit too: the task failed, the worker lives
            return (seq, False, (type(exc).__name__, str(exc),
                                 "".join(traceback.format_exception(type(exc), exc,
                                                                    exc.__traceback__))))

    def serve(self) -> None:
        threading.Thread(target=self._flusher, name="flusher", daemon=True).start()
        while True:
            if not self.queue:
                self.flush()
                self.take(self.read_frame())
                continue
            self.poll()
            item = self.queue.popleft()
            if item[0] in self.skip:
                self.skip.discard(item[0])
                continue
            if self.slot is not None:
                SLOT.pack_into(self.slot, 0, item[0])
            result = self.run_one(item)
            if self.slot is not None:
                SLOT.pack_into(self.slot, 0, -item[0])
            with self.lock:
                if not self.results:
                    self.oldest = time.monotonic()
                    self.wake.set()
                self.results.append(result)
                full = len(self.results) >= FLUSH_COUNT
            if full:
                self.flush()


def main() -> None:
    """Entry point: move the protocol off fds 0/1, then serve until the edge closes stdin."""
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # print() in a task goes to the edge's stderr/log
    os.close(devnull)
    slot = None
    try:
        slot = mmap.mmap(int(os.environ[SLOT_ENV]), SLOT.size)
    except (KeyError, ValueError, OSError):
        pass
    try:
        Worker(rfd, wfd, slot).serve()
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    os._exit(0)  # do not run a task's atexit handlers or wait for its threads


if __name__ == "__main__":
    main()
