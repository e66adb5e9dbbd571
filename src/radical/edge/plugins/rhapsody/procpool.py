"""The edge's pool of function-task worker processes (see `worker_main` for the child side).

Why our own pool and not `concurrent.futures.ProcessPoolExecutor`: that pool is *broken* for
good as soon as one worker dies (every pending future fails with `BrokenProcessPool`), so a
single ``os._exit`` or segfault in one task would fail every other task and need a rebuild;
it also cannot kill the one worker that runs a cancelled task, and pickles one call per task
(too slow for 20k tasks/s).  loky survives deaths but respawns the whole executor and adds a
dependency.  Here each worker is a plain child process (own session, so a kill takes its
children too) with two pipes:

* tasks go out in **batches** (one frame carries up to `MAX_CHUNK` tasks; a batch is split
  evenly over the workers, and only idle workers get new work, so a slow task delays only
  its own share); results come back in batches;
* a worker that dies (EOF on its pipe) is blamed on the task it was running — read from an
  8-byte page both processes map — which fails with a clear error; tasks it had not started
  go back to the front of the queue, and a new worker is started on demand;
* cancelling (or timing out) a *running* task kills its worker; a queued one is skipped.

Results are loaded with an unpickler that refuses every class: a worker can only send back
plain data, so a task cannot make the edge run code by returning a crafted object.
"""
from __future__ import annotations

import asyncio
import io
import itertools
import logging
import math
import mmap
import os
import pickle
import signal
import sys
import tempfile
from collections import deque
from typing import Any, Protocol

from .worker_main import HEADER, REPR_MARK, SLOT, SLOT_ENV

__all__ = ["MAX_CHUNK", "Job", "WorkerPool", "load_plain"]

log = logging.getLogger(__name__)

#: most tasks in one frame to one worker
MAX_CHUNK = 4096
#: seconds after a skip message when a worker still running a skipped task is killed
SKIP_RECHECK = 0.5
_BOOT = "from radical.edge.plugins.rhapsody.worker_main import main; main()"


class Owner(Protocol):
    """Who gets a job's outcome (the session's backend)."""

    def function_finished(self, task: dict, ok: bool, value: Any) -> None: ...

    def function_crashed(self, task: dict, detail: str, exit_code: int | None) -> None: ...


class Job:
    """One function task in the pool: what to send, and whom to tell."""

    __slots__ = ("seq", "task", "owner", "item", "worker", "cancelled")

    def __init__(self, task: dict, owner: Owner, path: str | None, fn_blob: bytes | None,
                 args: Any, kwargs: Any, args_blob: bytes | None,
                 kwargs_blob: bytes | None) -> None:
        self.seq = 0
        self.task = task
        self.owner = owner
        self.item: tuple = (path, fn_blob, args, kwargs, args_blob, kwargs_blob)
        self.worker: _Proc | None = None
        self.cancelled = False


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a worker result may hold plain data only, not "
                                     f"{module}.{name}")


def load_plain(data: bytes) -> Any:
    """Unpickle data that may contain no class or function reference at all."""
    return _PlainUnpickler(io.BytesIO(data)).load()


class _Repr:
    """A return value that only survived as its repr (results.json_safe marks it so)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def unwrap(value: Any) -> Any:
    if type(value) is tuple and len(value) == 2 and value[0] == REPR_MARK:
        return _Repr(value[1])
    return value


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "vanished"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _worker_env() -> dict[str, str]:
    """The edge's environment minus its own configuration (tokens, Redis URL/password)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RADICAL_EDGE_", "RADICAL_BRIDGE_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


class _Proc:
    """One worker process and what it holds."""

    __slots__ = ("proc", "slot", "inflight", "reader", "killed")

    def __init__(self, proc: asyncio.subprocess.Process, slot: mmap.mmap) -> None:
        self.proc = proc
        self.slot = slot
        self.inflight: deque[Job] = deque()
        self.reader: asyncio.Task | None = None
        self.killed = False

    def send(self, msg: Any) -> None:
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        assert self.proc.stdin is not None
        self.proc.stdin.write(HEADER.pack(len(data)) + data)

    def running(self) -> int:
        """seq of the task running now (>0), or -seq of the last one finished, or 0."""
        try:
            return SLOT.unpack_from(self.slot, 0)[0]
        except ValueError:  # closed
            return 0

    def kill(self) -> None:
        if not self.killed:
            self.killed = True
            _killpg(self.proc.pid)


class WorkerPool:
    """`size` worker processes, started on first use; one pool per edge (all sessions)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._workers: list[_Proc] = []
        self._pending: deque[Job] = deque()
        self._seq = itertools.count(1)
        self._scheduled = False
        self._spawner: asyncio.Task | None = None
        self._closed = False
        self.deaths = 0

    @property
    def workers(self) -> int:
        return len(self._workers)

    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    # -- API --------------------------------------------------------------------------------
    def submit(self, jobs: list[Job]) -> None:
        if self._closed:
            raise RuntimeError("the function worker pool is shut down")
        for job in jobs:
            job.seq = next(self._seq)
            job.item = (job.seq, *job.item)
        self._pending.extend(jobs)
        self._schedule()

    def cancel_many(self, jobs: list[Job]) -> None:
        """Stop `jobs` (their owner reports the state): pending ones are dropped, queued
        ones skipped by their worker (one message each), a running one's worker killed."""
        skips: dict[_Proc, list[int]] = {}
        for job in jobs:
            job.cancelled = True
            worker = job.worker
            if worker is None or worker.killed:
                continue  # still pending: dropped at dispatch
            if worker.running() == job.seq:
                worker.kill()  # its reader sees EOF and re-queues the rest
            else:
                skips.setdefault(worker, []).append(job.seq)
        for worker, seqs in skips.items():
            if not worker.killed:
                try:
                    worker.send(("skip", seqs))
                except (ConnectionError, RuntimeError):
                    continue
                # the worker may have started one before it read the skip: kill it then
                asyncio.get_running_loop().call_later(SKIP_RECHECK, self._recheck, worker,
                                                      frozenset(seqs))

    @staticmethod
    def _recheck(worker: _Proc, seqs: frozenset[int]) -> None:
        if not worker.killed and worker.running() in seqs:
            worker.kill()

    async def shutdown(self) -> None:
        self._closed = True
        if self._spawner is not None:
            self._spawner.cancel()
        for w in list(self._workers):
            w.kill()
        readers = [w.reader for w in self._workers if w.reader is not None]
        if readers:
            await asyncio.wait(readers, timeout=5)
        self._pending.clear()

    # -- dispatch ---------------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._scheduled and not self._closed:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        pending = self._pending
        while pending and pending[0].cancelled:
            pending.popleft()
        if not pending or self._closed:
            return
        if len(self._workers) < self.size and self._spawner is None:
            self._spawner = asyncio.get_running_loop().create_task(self._spawn_missing())
        idle = [w for w in self._workers if not w.inflight and not w.killed]
        if not idle:
            return
        chunk = max(1, min(MAX_CHUNK, math.ceil(len(pending) / self.size)))
        for w in idle:
            jobs: list[Job] = []
            while pending and len(jobs) < chunk:
                job = pending.popleft()
                if not job.cancelled:
                    job.worker = w
                    jobs.append(job)
            if not jobs:
                break
            w.inflight.extend(jobs)
            try:
                w.send(("run", [j.item for j in jobs]))
            except (ConnectionError, RuntimeError):
                w.kill()  # its reader re-queues the jobs

    async def _spawn_missing(self) -> None:
        try:
            while len(self._workers) < self.size and not self._closed:
                try:
                    self._workers.append(await self._spawn())
                except Exception as exc:
                    log.error("cannot start a function worker process: %s", exc)
                    self._fail_pending(f"cannot start a worker process: {exc}")
                    return
                self._schedule()
        finally:
            self._spawner = None

    async def _spawn(self) -> _Proc:
        fd, path = tempfile.mkstemp(prefix="radical-edge-slot-")
        try:
            os.unlink(path)
            os.ftruncate(fd, SLOT.size)
            slot = mmap.mmap(fd, SLOT.size)
            env = _worker_env()
            env[SLOT_ENV] = str(fd)
            argv = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []),
                    "-c", _BOOT]
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=None, env=env, pass_fds=(fd,), start_new_session=True)
        finally:
            os.close(fd)
        worker = _Proc(proc, slot)
        worker.reader = asyncio.get_running_loop().create_task(self._read(worker))
        return worker

    def _fail_pending(self, detail: str) -> None:
        while self._pending:
            job = self._pending.popleft()
            if not job.cancelled:
                job.owner.function_crashed(job.task, detail, None)

    # -- results ----------------------------------------------------------------------------
    async def _read(self, w: _Proc) -> None:
        stream = w.proc.stdout
        assert stream is not None
        try:
            while True:
                head = await stream.readexactly(HEADER.size)
                data = await stream.readexactly(HEADER.unpack(head)[0])
                self._take(w, load_plain(data))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            w.kill()
            raise
        except Exception:
            log.exception("bad frame from function worker %d: killing it", w.proc.pid)
        by_us = w.killed
        w.kill()
        try:
            await asyncio.wait_for(w.proc.wait(), 10)
        except asyncio.TimeoutError:
            pass
        self._died(w, by_us)

    def _take(self, w: _Proc, results: list) -> None:
        inflight = w.inflight
        for seq, ok, value in results:
            while inflight and inflight[0].seq != seq:
                inflight.popleft()  # skipped (cancelled before it started)
            if not inflight:
                continue
            job = inflight.popleft()
            job.worker = None
            if not job.cancelled:
                job.owner.function_finished(job.task, ok, unwrap(value) if ok else value)
        if not inflight:
            self._schedule()

    def _died(self, w: _Proc, by_us: bool = False) -> None:
        """Blame the task it was running; finished-but-unreported fail; the rest re-queue.

        Without a mark in the shared page (it could not be mapped) a death we did not cause
        is blamed on the first unreported task, so a crashing task cannot loop forever."""
        if w in self._workers:
            self._workers.remove(w)
        mark = w.running()
        w.slot.close()
        code = w.proc.returncode
        how = _describe_exit(code)
        jobs = list(w.inflight)
        w.inflight.clear()
        seqs = [j.seq for j in jobs]
        if mark > 0 and mark in seqs:
            culprit = seqs.index(mark)
            started = culprit + 1
        elif mark < 0 and -mark in seqs:
            culprit = None
            started = seqs.index(-mark) + 1
        elif not by_us and jobs:
            culprit, started = 0, 1
        else:
            culprit, started = None, 0
        requeue = []
        for i, job in enumerate(jobs):
            job.worker = None
            if job.cancelled:
                continue
            if i == culprit:
                self.deaths += 1
                job.owner.function_crashed(
                    job.task, f"the worker process running this task {how} (the task "
                    "crashed or was killed; the edge is fine)", code)
            elif i < started:
                job.owner.function_crashed(
                    job.task, f"the worker process {how} before it reported this task's "
                    "result (another task in its batch crashed it)", code)
            else:
                requeue.append(job)
        self._pending.extendleft(reversed(requeue))
        if not self._closed:
            self._schedule()
