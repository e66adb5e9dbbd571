"""One client's psij jobs: submit, status with incremental output, list, cancel, close.

Each session owns a directory (``<psij root>/sessions/<edge>/<sid>/``, mode 0700) where its
jobs' stdout/stderr (unless the spec names other paths) and environment files go; closing
the session cancels the jobs still running (unless the session was opened with
``cancel_on_close=false``) and removes that directory.

Blocking psij calls (executor creation, submit, cancel) run in threads; psij reports states
from its own threads, and `JobRecord.apply` turns those into exactly one `job_status`
notification per state.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from starlette.exceptions import HTTPException

from ...errors import plain_message
from ..base import PluginSession
from .build import BATCH_EXECUTORS, build_psij_spec, env_script
from .executors import ExecutorPool, missing_tool
from .jobs import JobRecord
from .spec import JobRequest, JobSpecError, normalize_executor, parse_job_spec

log = logging.getLogger(__name__)

#: longest failure message kept from psij (it may hold a whole launcher log)
MAX_MESSAGE = 4096
#: what psij's launcher prints last; psij reports it as the "message" of failed local jobs
LAUNCHER_MARKER = "_PSI_J_LAUNCHER_DONE"
#: how long closing a session waits for its cancellations to be issued
CLOSE_CANCEL_TIMEOUT = 30.0

OnChange = Callable[[JobRecord, dict], None]

#: scheduler answers meaning "the scheduler is not reachable", not "your job is wrong"
_UNAVAILABLE = ("unable to contact", "connection refused", "timed out", "timeout",
                "socket timed out", "slurm_load", "cannot connect", "temporarily unavailable")


def submit_error(executor: str, exc: BaseException) -> HTTPException:
    """A psij submission failure as an HTTP error: 503 scheduler down, else 422 (refused)."""
    text = plain_message(getattr(exc, "message", None) or exc).strip()
    cause = getattr(exc, "exception", None)
    if cause is not None and plain_message(cause) not in text:
        text = f"{text}: {plain_message(cause)}".strip(": ")
    text = text or type(exc).__name__
    if any(word in text.lower() for word in _UNAVAILABLE):
        return HTTPException(503, f"{executor} scheduler unavailable: {text}")
    return HTTPException(422, f"{executor} refused the job: {text}")


def clean_message(message: Any) -> str | None:
    """psij's failure message without its launcher marker, bounded in size."""
    if not isinstance(message, str):
        return None
    text = "\n".join(line for line in message.splitlines()
                     if line.strip() != LAUNCHER_MARKER).strip()
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + "..."
    return text or None


def check_local_executable(req: JobRequest) -> None:
    """For the local executor: the working directory and the executable must exist now
    (else a clear 422, not a job that fails later with exit code 127)."""
    if req.directory is not None:
        where = Path(os.path.expanduser(req.directory))
        if not where.exists():
            raise JobSpecError(f"directory '{req.directory}' does not exist on this edge")
        if not where.is_dir():
            raise JobSpecError(f"directory '{req.directory}' is not a directory")
    exe = req.executable
    if "/" not in exe:
        env_path = req.environment.get("PATH") or os.environ.get("PATH", "")
        if shutil.which(exe, path=env_path) is None:
            raise JobSpecError(f"executable {exe!r} not found on PATH")
        return
    path = Path(os.path.expanduser(exe))
    if not path.is_absolute():
        path = Path(req.directory or Path.home()) / path
    if not path.is_file() or not os.access(path, os.X_OK):
        raise JobSpecError(f"executable {exe!r} does not exist or is not executable")


class PsijSession(PluginSession):
    """Session-specific psij state: the jobs one client submitted."""

    def __init__(self, sid: str, *, pool: ExecutorPool, out_root: Path,
                 cancel_on_close: bool = True) -> None:
        super().__init__(sid)
        if not isinstance(cancel_on_close, bool):
            raise TypeError("cancel_on_close must be true or false")
        self._pool = pool
        self._dir = out_root / sid
        self._jobs: dict[str, JobRecord] = {}
        self.cancel_on_close = cancel_on_close

    @property
    def directory(self) -> Path:
        return self._dir

    def jobs(self) -> list[JobRecord]:
        return list(self._jobs.values())

    def record(self, job_id: str) -> JobRecord:
        record = self._jobs.get(job_id)
        if record is None:
            raise HTTPException(404, f"unknown job '{job_id}' in session '{self.sid}'")
        return record

    # -- submit -----------------------------------------------------------------------------
    async def submit(self, job_spec: Any, executor: Any = "local", *,
                     edge_name: str | None = None,
                     on_change: OnChange | None = None) -> dict[str, Any]:
        """Validate, submit, and answer ``{"job_id", "native_id", "state", "executor"}``."""
        if self.closed:
            raise HTTPException(410, f"session '{self.sid}' is closed")
        try:
            req = parse_job_spec(job_spec)
            known = await asyncio.to_thread(self._pool.known)
            name = normalize_executor(executor, known)
            tool = missing_tool(name)
            if tool is not None:
                raise HTTPException(422, f"executor '{name}' is not available on this edge: "
                                         f"'{tool}' is not on its PATH")
            if name == "local":  # stats the file system: off the loop (NFS may hang)
                await asyncio.to_thread(check_local_executable, req)
        except JobSpecError as exc:
            raise HTTPException(exc.status, exc.detail) from None
        if req.directory is None:
            req.directory = str(Path.home())
        try:
            return await self._submit(req, name, edge_name, on_change)
        except JobSpecError as exc:
            raise HTTPException(exc.status, exc.detail) from None

    async def _submit(self, req: JobRequest, name: str, edge_name: str | None,
                      on_change: OnChange | None) -> dict[str, Any]:
        import psij

        job = psij.Job()
        job_id = job.id
        stdout = req.stdout_path or str(self._dir / f"{job_id}.out")
        stderr = req.stderr_path or str(self._dir / f"{job_id}.err")
        env_file = None
        if name in BATCH_EXECUTORS and req.environment:
            env_file = str(self._dir / f"{job_id}.env")
        # the session dir usually sits on an NFS home: a hung file system must hang a worker
        # thread, never the plugin loop (which also sends the edge's heartbeats)
        await asyncio.to_thread(self._prepare_files, req, env_file)
        job.spec = build_psij_spec(req, name, stdout_path=stdout, stderr_path=stderr,
                                   env_file=env_file)
        # psij's batch templates read `job.name`, which psij.Job does not have
        job.name = req.name or f"redge-{Path(req.executable).name}"
        record = JobRecord(job_id, name, req, stdout, stderr, edge_name=edge_name)
        record.job = job
        record.on_change = on_change
        self._jobs[job_id] = record  # before submit: psij may report QUEUED from inside it
        job.set_job_status_callback(lambda j, s: self._on_status(record, j, s))
        try:
            executor = await asyncio.to_thread(self._pool.get, name)
            await asyncio.to_thread(executor.submit, job)
        except Exception as exc:
            self._jobs.pop(job_id, None)
            if env_file:
                await asyncio.to_thread(_unlink, env_file)
            if isinstance(exc, psij.InvalidJobException):
                raise HTTPException(422, f"invalid job: {plain_message(exc)}") from None
            if isinstance(exc, psij.SubmitException):
                raise submit_error(name, exc) from None
            if isinstance(exc, (ValueError, TypeError)):  # e.g. psij: "No such launcher"
                raise HTTPException(422, f"{name} refused the job: {plain_message(exc)}") from None
            if isinstance(exc, FileNotFoundError):  # a scheduler command vanished
                raise HTTPException(503, f"executor '{name}' is not available on this edge: "
                                         f"{plain_message(exc)}") from None
            log.exception("psij submit on %s failed", name)
            raise HTTPException(500, f"submitting to {name} failed: "
                                     f"{type(exc).__name__}: {plain_message(exc)}") from None
        record.apply(record.state, native_id=job.native_id)  # fills native_id only
        log.info("session %s: job %s submitted to %s as %s", self.sid, job_id, name,
                 record.native_id)
        return {"job_id": job_id, "native_id": record.native_id, "state": record.state,
                "executor": name, "directory": req.directory,
                "stdout_path": record.stdout_path, "stderr_path": record.stderr_path}

    def _prepare_files(self, req: JobRequest, env_file: str | None) -> None:
        """Create the session dir and the job's env file (blocking: run in a thread)."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if env_file:
            fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(env_script(req.environment, then_source=req.pre_launch))

    def _on_status(self, record: JobRecord, job: Any, status: Any) -> None:
        """psij status callback (any thread): notify new transitions, in order, once."""
        state = str(status.state)
        message = clean_message(status.message)
        with record.lock:  # apply + notify atomically: notifications keep the state order
            note = record.apply(state, exit_code=status.exit_code, message=message,
                                when=status.time, native_id=job.native_id)
            if note is None:
                return
            note["sid"] = self.sid
            self.notify("job_status", note)
        if record.final:
            self._cleanup_aux(record)
        hook = record.on_change
        if hook is not None:
            try:
                hook(record, note)
            except Exception:
                log.exception("job %s: state hook failed", record.job_id)

    def _cleanup_aux(self, record: JobRecord) -> None:
        """psij leaves `<native_id>.out` of completed and `.out/.ec` of canceled batch jobs
        in its work directory (it has read them by the time it reports the final state)."""
        if record.executor in BATCH_EXECUTORS and record.native_id:
            base = self._pool.script_dir(record.executor) / record.native_id
            for suffix in (".out", ".ec"):
                _unlink(f"{base}{suffix}")

    # -- queries ----------------------------------------------------------------------------
    async def get_job_status(self, job_id: str, stdout_offset: int = 0,
                             stderr_offset: int = 0) -> dict[str, Any]:
        record = self.record(job_id)
        return await asyncio.to_thread(record.status, stdout_offset, stderr_offset)

    async def list_jobs(self) -> dict[str, Any]:
        return {"jobs": [r.describe() for r in self._jobs.values()]}

    # -- cancel -----------------------------------------------------------------------------
    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        record = self.record(job_id)
        if record.final:  # idempotent, as the original: the final state, not an error
            return {"job_id": job_id, "native_id": record.native_id, "state": record.state,
                    "exit_code": record.exit_code, "canceled": False}
        await self._cancel(record)
        return {"job_id": job_id, "native_id": record.native_id, "state": record.state,
                "canceled": True}

    async def _cancel(self, record: JobRecord) -> None:
        import psij

        job = record.job
        try:
            executor = await asyncio.to_thread(self._pool.get, record.executor)
            await asyncio.to_thread(executor.cancel, job)
        except KeyError:  # local executor: the process ended meanwhile
            pass
        except psij.SubmitException as exc:
            if record.final:
                return
            text = str(exc)
            if "invalid job id" in text.lower() or "already" in text.lower():
                raise HTTPException(409, f"job '{record.job_id}' cannot be canceled: "
                                         f"{text}") from None
            raise HTTPException(502, f"{record.executor} could not cancel job "
                                     f"'{record.job_id}': {text}") from None

    # -- close ------------------------------------------------------------------------------
    async def close(self) -> dict:
        running = [r for r in self._jobs.values() if not r.final]
        canceled = 0
        if running and self.cancel_on_close:
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(*(self._cancel(r) for r in running),
                                   return_exceptions=True), CLOSE_CANCEL_TIMEOUT)
            except asyncio.TimeoutError:
                results = [TimeoutError("cancel timed out")] * len(running)
            for record, result in zip(running, results):
                if isinstance(result, BaseException):
                    log.warning("session %s: canceling job %s failed: %s", self.sid,
                                record.job_id, result)
                else:
                    canceled += 1
        left = [r for r in self._jobs.values() if not r.final]
        if left and not self.cancel_on_close:
            log.warning("session %s closed with %d job(s) still running; their output stays "
                        "in %s", self.sid, len(left), self._dir)
        else:
            await asyncio.to_thread(shutil.rmtree, self._dir, True)
        await super().close()
        return {"canceled": canceled}


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
