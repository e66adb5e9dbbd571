"""`QueueInfo`: what every batch-system backend offers, with a shared TTL cache.

Scheduler commands are slow (a loaded `slurmctld` answers `squeue` in seconds) and every
portal tab polls, so results are cached per (kind, user) for `ttl` seconds; `force=True`
bypasses the cache. One lock per key makes concurrent callers of the same question wait for
one command instead of running it N times. All methods are blocking: callers on an event
loop use `asyncio.to_thread`.

`user`: None means the user this edge runs as, '*' means everyone (admin view).
"""
from __future__ import annotations

import copy
import getpass
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Mapping, Sequence

from radical.edge.hpc.batch.base import BatchSystem, CmdResult, run_command

from ....errors import StatusError
from .shapes import job_in_queue

log = logging.getLogger(__name__)

#: how a backend runs a command: (argv, timeout) -> CmdResult (tests pass a fake)
Runner = Callable[[Sequence[str], float], CmdResult]
ALL_USERS = "*"
#: longest user name passed to a scheduler command
MAX_USER = 256


class QueueInfoError(StatusError):
    """A failure with an HTTP status the plugin can pass on."""

    status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class UnknownQueue(QueueInfoError, LookupError):
    status = 404


class UnknownJob(QueueInfoError, LookupError):
    status = 404


class CancelDenied(QueueInfoError, PermissionError):
    status = 403


class CancelConflict(QueueInfoError):
    """The job exists but cannot be cancelled now (e.g. it already finished)."""

    status = 409


class JobEnded(CancelConflict):
    """The job already ended; `state` is its final state when the scheduler told it."""

    def __init__(self, detail: str, state: str | None = None) -> None:
        super().__init__(detail)
        self.state = state


class NotAJobId(UnknownJob):
    """The id is not even shaped like one of this scheduler's job ids (bad input)."""


class CancelFailed(QueueInfoError):
    status = 400


class BadUser(QueueInfoError):
    """A user name no scheduler command may be given (control characters, option-like)."""

    status = 400


class BackendUnavailable(QueueInfoError):
    """The scheduler did not answer (controller down, command missing, timeout)."""

    status = 503


def groups_of(user: str) -> set[str] | None:
    """Group names of a local user; None when the user is unknown on this host."""
    try:
        import grp
        import pwd

        entry = pwd.getpwnam(user)
    except (ImportError, KeyError):
        return None
    names = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    try:
        names.add(grp.getgrgid(entry.pw_gid).gr_name)
    except KeyError:
        pass
    return names


def current_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return getpass.getuser()


class QueueInfo(ABC):
    """Queues, jobs and allocations of one batch system, cached."""

    backend_name: ClassVar[str] = "none"

    def __init__(self, batch: BatchSystem | None = None, ttl: float = 30.0,
                 runner: Runner | None = None, timeout: float = 30.0,
                 env: Mapping[str, str] | None = None) -> None:
        self.batch = batch
        self.ttl = ttl
        self.timeout = timeout
        self._env = dict(env if env is not None else (batch.env if batch else os.environ))
        self._runner = runner or (lambda argv, t: run_command(argv, t, self._env))
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self._user = current_user()

    # -- subclasses implement these (blocking; raise QueueInfoError on failure) ----------------
    @abstractmethod
    def _collect_queues(self, user: str) -> dict[str, dict]:
        """{name: queue dict} visible to `user` ('*' = all)."""

    @abstractmethod
    def _collect_jobs(self, user: str) -> list[dict]:
        """Jobs of `user` ('*' = everyone) in every queue."""

    @abstractmethod
    def _collect_allocations(self, user: str) -> list[dict]:
        """Accounts/associations of `user` ('*' = all rows)."""

    @abstractmethod
    def _cancel(self, job_id: str) -> dict:
        """Cancel one job; UnknownJob / CancelDenied / CancelConflict / CancelFailed."""

    # -- helpers for subclasses ----------------------------------------------------------------
    def run(self, argv: Sequence[str], timeout: float | None = None) -> CmdResult:
        return self._runner(list(argv), timeout or self.timeout)

    def run_ok(self, argv: Sequence[str], timeout: float | None = None) -> str:
        """stdout of a command that must succeed, else BackendUnavailable with its stderr."""
        res = self.run(argv, timeout)
        if not res.ok:
            why = (res.stderr or res.stdout).strip() or f"exit code {res.rc}"
            raise BackendUnavailable(f"{argv[0]} failed: {why}")
        return res.stdout

    @property
    def user(self) -> str:
        """The user this edge runs as."""
        return self._user

    def resolve_user(self, user: str | None) -> str:
        """`user` as scheduler commands get it (default: the edge's user); BadUser (400)
        for what cannot be a user name: argv cannot carry a NUL, and a leading '-' or a
        control character is an injection attempt or a typo, never a name."""
        user = (user or "").strip()
        if len(user) > MAX_USER or user.startswith("-") or any(
                ord(c) < 32 or ord(c) == 127 for c in user):
            shown = user[:64].encode("unicode_escape").decode("ascii")
            raise BadUser(f"'{shown}' is not a user name")
        return user or self._user

    # -- cache ---------------------------------------------------------------------------------
    def _cached(self, kind: str, user: str, force: bool, compute: Callable[[], Any]) -> Any:
        key = (kind, user)
        asked = time.monotonic()
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
            hit = self._cache.get(key)
        if hit and not force and asked - hit[0] < self.ttl:
            return copy.deepcopy(hit[1])
        with key_lock:  # one command per key at a time; latecomers reuse its answer
            with self._lock:
                hit = self._cache.get(key)
            now = time.monotonic()
            if hit and now - hit[0] < self.ttl and (not force or hit[0] >= asked):
                return copy.deepcopy(hit[1])
            value = compute()
            with self._lock:
                self._cache[key] = (time.monotonic(), value)
            return copy.deepcopy(value)

    def invalidate(self, kind: str | None = None) -> None:
        """Forget cached answers (of one kind, or all)."""
        with self._lock:
            for key in [k for k in self._cache if kind is None or k[0] == kind]:
                del self._cache[key]

    # -- public API ----------------------------------------------------------------------------
    def get_info(self, user: str | None = None, force: bool = False) -> dict:
        """{"queues": {name: queue}} visible to `user`."""
        who = self.resolve_user(user)
        return {"queues": self._cached("info", who, force, lambda: self._collect_queues(who))}

    def list_all_jobs(self, user: str | None = None, force: bool = False) -> dict:
        """{"jobs": [...]} of `user` in every queue."""
        who = self.resolve_user(user)
        return {"jobs": self._cached("jobs", who, force, lambda: self._collect_jobs(who))}

    def list_jobs(self, queue: str, user: str | None = None, force: bool = False) -> dict:
        """{"jobs": [...]} of `user` in `queue`; UnknownQueue when there is no such queue."""
        names = self.get_info(ALL_USERS)["queues"]
        if queue not in names:
            names = self.get_info(ALL_USERS, force=True)["queues"]  # maybe it is new
        if queue not in names:
            known = ", ".join(sorted(names)) or "none"
            raise UnknownQueue(f"unknown queue '{queue}' (known: {known})")
        jobs = self.list_all_jobs(user, force)["jobs"]
        return {"jobs": [job for job in jobs if job_in_queue(job, queue)]}

    def list_allocations(self, user: str | None = None, force: bool = False) -> dict:
        """{"allocations": [...]} of `user`."""
        who = self.resolve_user(user)
        return {"allocations": self._cached("allocations", who, force,
                                            lambda: self._collect_allocations(who))}

    def cancel_job(self, job_id: str) -> dict:
        """Cancel `job_id`; job caches are dropped so the next listing shows it."""
        job_id = str(job_id).strip()
        try:
            return self._cancel(job_id)
        finally:
            self.invalidate("jobs")

    def start_prefetch(self) -> list[threading.Thread]:
        """Warm the caches in background threads (queues, allocations, my jobs in parallel)."""
        threads = []
        for kind, call in (("info", self.get_info), ("allocations", self.list_allocations),
                           ("jobs", self.list_all_jobs)):
            thread = threading.Thread(target=self._prefetch_one, args=(kind, call),
                                      name=f"queue_info-prefetch-{kind}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def _prefetch_one(self, kind: str, call: Callable[[], Any]) -> None:
        started = time.monotonic()
        try:
            call()
            log.debug("prefetched %s in %.2f s", kind, time.monotonic() - started)
        except Exception as exc:  # a warm-up must never take the edge down
            log.warning("prefetching %s from %s failed: %s", kind, self.backend_name, exc)

    def describe(self) -> dict:
        return {"backend": self.backend_name, "user": self._user, "ttl": self.ttl}
