"""One lucid session: an RP session with its pilot and task managers.

RADICAL-Pilot's API blocks (session start-up, submits, cancels, close), so every RP call
runs in a worker thread, serialised by a lock; RP's state callbacks arrive on RP threads and
are handed to the plugin loop, which resolves waiters and publishes notifications.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import psutil
from starlette.exceptions import HTTPException

from ..base import PluginSession
from .site import EdgeSite, check_pilot
from .spec import MAX_OUTPUT

log = logging.getLogger(__name__)

TASK_FINAL = frozenset({"DONE", "FAILED", "CANCELED"})
PILOT_FINAL = TASK_FINAL


def _tail(text: Any) -> str:
    if not isinstance(text, str):
        return ""
    return text[-MAX_OUTPUT:]


def task_dict(task: Any) -> dict[str, Any]:
    """What a client sees of an RP task (output capped at `MAX_OUTPUT` characters)."""
    desc = task.description
    return {"tid": task.uid, "name": task.name, "state": task.state,
            "exit_code": task.exit_code, "pilot": task.pilot,
            "stdout": _tail(task.stdout), "stderr": _tail(task.stderr),
            "executable": desc.get("executable"), "arguments": list(desc.get("arguments") or [])}


def pilot_dict(pilot: Any) -> dict[str, Any]:
    desc = pilot.description
    return {"pid": pilot.uid, "state": pilot.state, "resource": desc.get("resource"),
            "cores": desc.get("cores"), "gpus": desc.get("gpus"),
            "runtime": desc.get("runtime"), "sandbox": pilot.pilot_sandbox}


class LucidSession(PluginSession):
    """Pilots and tasks of one client; the RP session starts with the first pilot."""

    def __init__(self, sid: str, *, root: Path, loop: asyncio.AbstractEventLoop,
                 site: EdgeSite) -> None:
        super().__init__(sid)
        self._dir = root / sid
        self._site = site
        self._loop = loop
        self._lock = asyncio.Lock()  # one RP call at a time
        self._rp: Any = None
        self._pmgr: Any = None
        self._tmgr: Any = None
        self._pilots: dict[str, Any] = {}
        self._tasks: dict[str, Any] = {}
        self._done: dict[str, asyncio.Event] = {}

    # -- RP life cycle (threads) ------------------------------------------------------------
    def _start_rp(self) -> None:
        import radical.pilot as rp

        self._site.ensure()  # env and configs before rp.Session: RP reads them once, at start
        self._dir.mkdir(parents=True, exist_ok=True)
        self._rp = rp.Session(cfg={"base": str(self._dir)})
        self._pmgr = rp.PilotManager(session=self._rp)
        self._tmgr = rp.TaskManager(session=self._rp)
        self._pmgr.register_callback(self._pilot_cb)
        self._tmgr.register_callback(self._task_cb)

    async def _ensure_rp(self) -> None:
        if self._rp is None:
            await asyncio.to_thread(self._start_rp)

    # RP threads -> loop
    def _task_cb(self, task: Any, state: str) -> None:
        self._loop.call_soon_threadsafe(self._on_task, task.uid, state)

    def _pilot_cb(self, pilot: Any, state: str) -> None:
        self._loop.call_soon_threadsafe(self._on_pilot, pilot.uid, state)

    def _on_task(self, tid: str, state: str) -> None:
        task = self._tasks.get(tid)
        if task is None:
            return
        data = {"sid": self.sid, "tid": tid, "state": state}
        if state in TASK_FINAL:
            data.update(task_dict(task))
            self._event(tid).set()
        self.notify("task_status", data)

    def _on_pilot(self, pid: str, state: str) -> None:
        self.notify("pilot_status", {"sid": self.sid, "pid": pid, "state": state})

    def _event(self, tid: str) -> asyncio.Event:
        return self._done.setdefault(tid, asyncio.Event())

    # -- operations (loop) ------------------------------------------------------------------
    async def pilot_submit(self, desc: dict[str, Any]) -> dict[str, Any]:
        import radical.pilot as rp

        async with self._lock:
            self._check_active()
            check_pilot(desc, await asyncio.to_thread(self._site.ensure))
            await self._ensure_rp()
            desc = {"sandbox": str(self._dir / "sandbox"), **desc}

            def submit() -> Any:
                pilot = self._pmgr.submit_pilots(rp.PilotDescription(desc))
                self._tmgr.add_pilots(pilot)
                return pilot

            try:
                pilot = await asyncio.to_thread(submit)
            except Exception as exc:  # RP refuses unknown resources and the like
                raise HTTPException(422, f"pilot refused: {type(exc).__name__}: {exc}") from None
            self._pilots[pilot.uid] = pilot
        return {"pid": pilot.uid}

    def pilot_status(self, pid: str | None = None) -> dict[str, Any]:
        if pid is None:
            return {"pilots": [pilot_dict(p) for p in self._pilots.values()]}
        return pilot_dict(self._pilot(pid))

    async def task_submit(self, desc: dict[str, Any]) -> dict[str, Any]:
        import radical.pilot as rp

        async with self._lock:
            self._check_active()
            if not self._pilots:
                raise HTTPException(409, "submit a pilot first (pilot_submit)")
            task = await asyncio.to_thread(self._tmgr.submit_tasks, rp.TaskDescription(desc))
            self._tasks[task.uid] = task
            self._event(task.uid)
            if task.state in TASK_FINAL:  # finished before we registered it
                self._on_task(task.uid, task.state)
        return {"tid": task.uid}

    async def task_wait(self, tid: str, timeout: float) -> dict[str, Any]:
        """The task once final, or its current state after `timeout` s."""
        task = self._task(tid)
        if task.state not in TASK_FINAL:
            try:
                await asyncio.wait_for(self._event(tid).wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return {"tid": tid, "task": task_dict(task)}

    def task_list(self) -> dict[str, Any]:
        return {"tasks": [task_dict(t) for t in self._tasks.values()]}

    async def task_cancel(self, tid: str) -> dict[str, Any]:
        task = self._task(tid)
        if task.state in TASK_FINAL:
            raise HTTPException(409, f"task '{tid}' already ended ({task.state})")
        async with self._lock:
            await asyncio.to_thread(self._tmgr.cancel_tasks, uids=[tid])
        return {"tid": tid, "canceled": True}

    def _task(self, tid: str) -> Any:
        task = self._tasks.get(tid)
        if task is None:
            raise HTTPException(404, f"unknown task '{tid}' in session '{self.sid}'")
        return task

    def _pilot(self, pid: str) -> Any:
        pilot = self._pilots.get(pid)
        if pilot is None:
            raise HTTPException(404, f"unknown pilot '{pid}' in session '{self.sid}'")
        return pilot

    async def close(self) -> dict:
        """Shut RP down (pilots, agents, bridges) and remove the session's files."""
        await super().close()
        async with self._lock:
            if self._rp is not None:
                await asyncio.to_thread(self._shutdown_rp)
        await asyncio.to_thread(shutil.rmtree, self._dir, True)
        return {}

    def _shutdown_rp(self) -> None:
        uid = self._rp.uid
        try:
            self._rp.close(download=False, terminate=True)
        except Exception:
            log.exception("closing RP session %s failed", uid)
        _drop_id_counters(uid)
        jobs = self._site.cancel_leftover_jobs(self._dir)
        if jobs:
            log.warning("RP session %s left batch job(s) %s; cancelled them", uid, jobs)
        killed = kill_leftovers(self._dir)
        if killed:
            log.warning("RP session %s left %d process(es) behind; killed them", uid, killed)


def _drop_id_counters(rp_uid: str) -> None:
    """radical.utils keeps per-session id counters in ``~/.radical/utils/<rp uid>/`` (its
    `RADICAL_BASE`) and never removes them; a closed session's are of no further use."""
    try:
        from radical.utils import ids

        base = getattr(ids, "_BASE", None)
    except Exception:
        return
    if base and rp_uid.startswith("rp.session."):
        shutil.rmtree(os.path.join(base, rp_uid), ignore_errors=True)


def session_processes(path: Path) -> list[psutil.Process]:
    """Processes of this user working in or named after `path` (RP daemonises its bridges
    and the pilot agent, so they are not children of the edge; all of them, and the tasks,
    run with a command line or working directory under the session's directory)."""
    mark = str(path)
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == psutil.Process().pid:
                continue
            if mark in " ".join(proc.cmdline()) or proc.cwd().startswith(mark):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_leftovers(path: Path) -> int:
    """Kill what still runs for a session after RP's close (a close that failed half way
    must not leave pilots, bridges or tasks behind); returns how many."""
    found = session_processes(path)
    for proc in found:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(found, timeout=5)
    return len(found)
