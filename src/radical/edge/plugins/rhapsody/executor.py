"""rhapsody's `concurrent` backend, made safe to serve remote clients.

`ManagedConcurrentBackend` subclasses rhapsody's `ConcurrentExecutionBackend` (same name,
state model, callbacks and result fields) and changes what a shared edge cannot live with:

* **Cancel really cancels.**  Executables start in their own session/process group
  (``start_new_session=True``); cancelling one (or `cancel_all`, or closing the session)
  sends SIGTERM to the whole group and SIGKILL after `kill_grace` seconds, so children go
  too.  Upstream only cancels the asyncio task and leaves the process running.
* **Bounded fan-out.**  At most `slots` executables run at once (one semaphore shared by all
  sessions of the edge: `Settings.max_running_tasks`); the rest wait in a FIFO without an
  asyncio task each, so a 10k batch neither forks 10k processes nor holds 10k coroutines.
* **Functions in worker processes, not in the edge.**  Function tasks go in batches to the
  edge's `procpool.WorkerPool` (no coroutine per task): ``os._exit`` or a segfault in a task
  fails that task, not the edge; cancelling a running function kills its worker (queued
  ones are skipped).  The allow-listed benchmark ``functions:noop`` completes inline (it
  cannot crash or block).  Completions reach the loop in batches (one wake-up per burst).
* **Timeouts** (`task_backend_specific_kwargs.timeout`) kill the process group or the
  function's worker (FAILED).
* Output is decoded as UTF-8 with replacement (upstream fails the task on binary output)
  and streams while the task runs (`stream.py`: `task_output` notifications);
  ``env`` is added to the edge's environment instead of replacing it; without ``cwd``
  executables run in the session's scratch dir (not the edge's cwd); a missing or
  non-executable program gives exit code 127/126 like a shell; `shutdown` never blocks the
  loop on running functions.

Must be used from one event loop (the edge's plugin host loop).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rhapsody.backends.constants import BackendMainStates
from rhapsody.backends.execution.concurrent import ConcurrentExecutionBackend

from .callables import NOOP_PATH, FunctionRef
from .procpool import Job, WorkerPool
from .stream import TaskOutput, collect

from ...constants import TASK_TERMINAL_STATES

log = logging.getLogger(__name__)

TERMINAL = TASK_TERMINAL_STATES
#: seconds between SIGTERM and SIGKILL for a cancelled/timed-out process group
KILL_GRACE = 2.0


def signal_group(pid: int, sig: int) -> bool:
    """Send `sig` to process group `pid`; False if it no longer exists."""
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # pid reused by someone else's group: leave it alone
        return False


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (Linux /proc; else kill(0))."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


class ManagedConcurrentBackend(ConcurrentExecutionBackend):
    """rhapsody `concurrent` with process-group kill, bounded executables, batched wake-ups."""

    def __init__(self, *, slots: asyncio.Semaphore | None = None,
                 pool: WorkerPool | None = None, max_workers: int | None = None,
                 kill_grace: float = KILL_GRACE, name: str = "concurrent") -> None:
        # rhapsody's base wants an executor; functions never run in it (see `pool`)
        super().__init__(ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix="rhapsody-unused"), name=name)
        #: the edge's worker processes (shared by sessions); a private one if none is given
        self._own_pool = pool is None
        self._pool = pool if pool is not None else WorkerPool(max_workers or 2)
        self._slots = slots or asyncio.Semaphore(64)
        self._kill_grace = kill_grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cmd_queue: deque[dict] = deque()
        self._dispatcher: asyncio.Task | None = None
        self._running: dict[str, asyncio.Task] = {}  # uid -> task running an executable
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._jobs: dict[str, Job] = {}  # uid -> function task in the worker pool
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._reapers: set[asyncio.Task] = set()
        self._inline_done: list[dict] = []
        self._wake_scheduled = False
        self._closing = False
        #: on_output(task, stream, offset, text): output of running executables (stream.py)
        self.on_output: Any = None

    # -- introspection ----------------------------------------------------------------------
    @property
    def running_processes(self) -> int:
        return len(self._procs)

    @property
    def queued_executables(self) -> int:
        return len(self._cmd_queue)

    def process_ids(self) -> list[int]:
        return [p.pid for p in self._procs.values()]

    # -- state ------------------------------------------------------------------------------
    def _emit(self, task: dict, state: str) -> None:
        task["state"] = state
        if state in TERMINAL:
            uid = task["uid"]
            self.tasks.pop(uid, None)
            timer = self._timers.pop(uid, None)
            if timer is not None:
                timer.cancel()
        self._callback_func(task, state)

    # -- submission -------------------------------------------------------------------------
    async def submit_tasks(self, tasks: list[dict[str, Any]]) -> list:
        if self._closing:
            raise RuntimeError("backend is shut down")
        if self._backend_state != BackendMainStates.RUNNING:
            self._backend_state = BackendMainStates.RUNNING
        loop = self._loop = asyncio.get_running_loop()
        jobs: list[Job] = []
        for task in tasks:
            uid = task["uid"]
            if task.get("state") in TERMINAL:  # cancelled before it reached us
                continue
            self.tasks[uid] = task
            timeout = (task.get("task_backend_specific_kwargs") or {}).get("timeout")
            if task.get("function"):
                job = self._start_function(task)
                if job is not None:
                    jobs.append(job)
                    if timeout:
                        self._timers[uid] = loop.call_later(timeout, self._expire_function,
                                                            uid, timeout)
            else:
                self._cmd_queue.append(task)
        if jobs:
            self._pool.submit(jobs)
        if self._cmd_queue and self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch_commands())
        return []

    # -- functions --------------------------------------------------------------------------
    def _start_function(self, task: dict) -> Job | None:
        """RUNNING, then a pool job (or, for the allow-listed no-op, done at once)."""
        self._emit(task, "RUNNING")
        func = task["function"]
        if not isinstance(func, FunctionRef):  # a plain callable (tests, embedding code)
            func = FunctionRef(path=f"{func.__module__}:{func.__qualname__}", func=func)
        if func.path == NOOP_PATH:
            self._inline_done.append(task)
            self._wake()
            return None
        job = Job(task, self, func.path, func.blob, task.get("args") or (),
                  task.get("kwargs") or {}, task.get("_args_blob"), task.get("_kwargs_blob"))
        self._jobs[task["uid"]] = job
        return job

    def _wake(self) -> None:
        if not self._wake_scheduled and self._loop is not None:
            self._wake_scheduled = True
            self._loop.call_soon(self._drain_inline)

    def _drain_inline(self) -> None:
        self._wake_scheduled = False
        items, self._inline_done = self._inline_done, []
        for task in items:
            if task.get("state") not in TERMINAL:
                task.update({"return_value": None, "stdout": "None", "exit_code": 0})
                self._emit(task, "DONE")

    def function_finished(self, task: dict, ok: bool, value: Any) -> None:
        """The pool's report of one task (on the loop)."""
        self._jobs.pop(task["uid"], None)
        if task.get("state") in TERMINAL:
            return  # cancelled or timed out: already reported
        if ok:
            task.update({"return_value": value, "stdout": str(value), "exit_code": 0})
            self._emit(task, "DONE")
        else:
            kind, message, tb = value
            task.update({"stdout": "", "stderr": message, "exit_code": 1,
                         "exception": f"{kind}: {message}", "return_value": None,
                         "traceback": tb})
            self._emit(task, "FAILED")

    def function_crashed(self, task: dict, detail: str, exit_code: int | None) -> None:
        """The task's worker process died (or none could be started)."""
        self._jobs.pop(task["uid"], None)
        if task.get("state") in TERMINAL:
            return
        task.update({"stdout": "", "stderr": detail, "exit_code": exit_code,
                     "exception": f"WorkerDied: {detail}", "error": detail,
                     "return_value": None, "traceback": ""})
        self._emit(task, "FAILED")

    def _expire_function(self, uid: str, timeout: float) -> None:
        self._timers.pop(uid, None)
        task = self.tasks.get(uid)
        if task is None or task.get("state") in TERMINAL:
            return
        job = self._jobs.pop(uid, None)
        task.update({"exit_code": None, "error": f"timed out after {timeout:g} s",
                     "exception": TimeoutError(f"timed out after {timeout:g} s")})
        self._emit(task, "FAILED")
        if job is not None:
            self._pool.cancel_many([job])  # kills its worker if it is running

    # -- executables ------------------------------------------------------------------------
    async def _dispatch_commands(self) -> None:
        """Start queued executables as slots free up (one waiter per backend)."""
        loop = asyncio.get_running_loop()
        try:
            while self._cmd_queue:
                task = self._cmd_queue.popleft()
                if task.get("state") in TERMINAL:
                    continue
                await self._slots.acquire()
                if task.get("state") in TERMINAL or self._closing:
                    self._slots.release()
                    continue
                runner = loop.create_task(self._run_command(task))
                self._running[task["uid"]] = runner
                # released when the runner ends, even if cancelled before its first step
                runner.add_done_callback(lambda _t, uid=task["uid"]: self._runner_done(uid))
        finally:
            self._dispatcher = None

    async def _run_command(self, task: dict) -> None:
        uid = task["uid"]
        proc: asyncio.subprocess.Process | None = None
        files: list[Any] = []
        kw = task.get("task_backend_specific_kwargs") or {}
        timeout = kw.get("timeout")
        try:
            env = kw.get("env")
            if env is not None:
                env = {**os.environ, **env}
            if task.get("capture_stdio"):
                out_path = os.path.join(self._work_dir, f"{uid}.stdout")
                err_path = os.path.join(self._work_dir, f"{uid}.stderr")
                files = [open(out_path, "wb"), open(err_path, "wb")]
                stdout, stderr = files
            else:
                stdout = stderr = asyncio.subprocess.PIPE
            arguments = [str(a) for a in task.get("arguments") or []]
            common = dict(stdout=stdout, stderr=stderr, stdin=asyncio.subprocess.DEVNULL,
                          cwd=kw.get("cwd") or self._work_dir, env=env,
                          start_new_session=True)
            try:
                if kw.get("shell"):
                    cmd = " ".join([task["executable"], *arguments])
                    proc = await asyncio.create_subprocess_shell(cmd, **common)
                else:
                    proc = await asyncio.create_subprocess_exec(task["executable"], *arguments,
                                                                **common)
            except FileNotFoundError as exc:
                self._fail(task, exc, 127)
                return
            except PermissionError as exc:
                self._fail(task, exc, 126)
                return
            task["pid"] = proc.pid
            self._procs[uid] = proc
            self._emit(task, "RUNNING")
            try:
                if files:
                    await asyncio.wait_for(proc.wait(), timeout)
                    out, err = files[0].name, files[1].name
                else:
                    output = TaskOutput(task, self.on_output, asyncio.get_running_loop())
                    try:
                        await asyncio.wait_for(collect(proc, output), timeout)
                    finally:
                        out, err = output.finish()
            except asyncio.TimeoutError:
                self._terminate(proc)
                try:
                    await asyncio.wait_for(asyncio.shield(proc.wait()), self._kill_grace + 1)
                except asyncio.TimeoutError:
                    pass
                if task.get("state") not in TERMINAL:
                    task.update({"exit_code": proc.returncode,
                                 "error": f"timed out after {timeout:g} s",
                                 "exception": TimeoutError(f"timed out after {timeout:g} s")})
                    self._emit(task, "FAILED")
                return
            if task.get("state") in TERMINAL:  # cancelled while finishing
                return
            task.update({"stdout": out, "stderr": err, "exit_code": proc.returncode})
            self._emit(task, "DONE" if proc.returncode == 0 else "FAILED")
        except asyncio.CancelledError:
            if proc is not None and proc.returncode is None:
                self._terminate(proc)
            if task.get("state") not in TERMINAL:
                self._emit(task, "CANCELED")
            raise
        except Exception as exc:
            if proc is not None and proc.returncode is None:
                self._terminate(proc)
            if task.get("state") not in TERMINAL:
                self._fail(task, exc, 1)
        finally:
            for fh in files:
                fh.close()
            self._procs.pop(uid, None)

    def _runner_done(self, uid: str) -> None:
        self._running.pop(uid, None)
        self._slots.release()

    def _fail(self, task: dict, exc: BaseException, exit_code: int) -> None:
        task.update({"stdout": "", "stderr": str(exc), "exit_code": exit_code,
                     "exception": exc, "return_value": None, "traceback": ""})
        self._emit(task, "FAILED")

    def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the process group now, SIGKILL it after the grace period (not cancellable)."""
        pid = proc.pid
        signal_group(pid, signal.SIGTERM)
        loop = self._loop or asyncio.get_running_loop()
        reaper = loop.create_task(self._reap(proc, pid))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)

    async def _reap(self, proc: asyncio.subprocess.Process, pid: int) -> None:
        try:
            await asyncio.wait_for(proc.wait(), self._kill_grace)
        except asyncio.TimeoutError:
            pass
        except asyncio.CancelledError:
            signal_group(pid, signal.SIGKILL)
            raise
        # the leader may be gone while children of its group live on: kill the group anyway
        signal_group(pid, signal.SIGKILL)

    # -- cancellation -----------------------------------------------------------------------
    def _cancel(self, uid: str, jobs: list[Job] | None = None) -> bool:
        """Report `uid` CANCELED and stop it; a function's job goes to `jobs` if given."""
        task = self.tasks.get(uid)
        if task is None or task.get("state") in TERMINAL:
            return False
        runner = self._running.get(uid)
        job = self._jobs.pop(uid, None)
        self._emit(task, "CANCELED")  # before cancelling: the runner must not report again
        if runner is not None:
            runner.cancel()
        elif job is not None:
            if jobs is not None:
                jobs.append(job)
            else:
                self._pool.cancel_many([job])  # a queued function is skipped, a running
                # one killed
        return True  # a queued executable is skipped by the dispatcher

    async def cancel_task(self, uid: str) -> bool:
        runner = self._running.get(uid)
        ok = self._cancel(uid)
        if ok and runner is not None:
            await self._settle([runner])
        return ok

    async def cancel_all_tasks(self) -> int:
        runners = list(self._running.values())
        jobs: list[Job] = []
        count = sum(1 for uid in list(self.tasks) if self._cancel(uid, jobs))
        if jobs:
            self._pool.cancel_many(jobs)
        self._cmd_queue.clear()
        if runners:
            await self._settle(runners)
        return count

    async def _settle(self, runners: list[asyncio.Task]) -> None:
        """Wait (bounded) until cancelled runners signalled their groups and those exited."""
        await asyncio.wait(runners, timeout=1.0)
        if self._reapers:
            await asyncio.wait(list(self._reapers), timeout=self._kill_grace + 1.0)

    async def shutdown(self) -> None:
        """Cancel everything (killing process groups), then drop the pool without blocking."""
        if self._closing:
            return
        self._closing = True
        await self.cancel_all_tasks()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._reapers:
            await asyncio.wait(list(self._reapers), timeout=self._kill_grace + 2)
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self._own_pool:
            await self._pool.shutdown()
        self._backend_state = BackendMainStates.SHUTDOWN
        self.tasks.clear()
        self._jobs.clear()
        self._inline_done = []
