"""The `BatchSystem` interface and the safe subprocess runner its backends share.

An edge asks one question of the local scheduler at start-up: "is there one, and am I inside
one of its jobs?". Everything here is cheap, never raises into callers, and bounds every
external command with a timeout: a hung `squeue` must not keep an edge from starting.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

log = logging.getLogger(__name__)

#: seconds any scheduler command may take before we give up on it
DEFAULT_TIMEOUT = 15.0

#: keys of an allocation summary (sysinfo's `job_allocation` shape, plus `remaining_seconds`)
ALLOCATION_KEYS = ("job_id", "partition", "n_nodes", "nodelist", "cpus_per_node",
                   "gpus_per_node", "account", "job_name", "runtime", "remaining_seconds")


@dataclass(frozen=True)
class CmdResult:
    """Outcome of one command; `rc` is -1 when it could not run or timed out."""

    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def run_command(argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT,
                env: Mapping[str, str] | None = None) -> CmdResult:
    """Run `argv` without a shell; never raises, always returns within `timeout`."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None,
                              stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        log.warning("%s timed out after %.0f s", argv[0], timeout)
        return CmdResult(-1, "", f"{argv[0]}: timed out after {timeout:g} s")
    except OSError as exc:
        return CmdResult(-1, "", f"{argv[0]}: {exc.strerror or exc}")
    return CmdResult(proc.returncode, proc.stdout, proc.stderr)


def which(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """`shutil.which` honouring the PATH of `env` (so tests can point at fake tools)."""
    path = (env if env is not None else os.environ).get("PATH")
    return shutil.which(name, path=path)


def as_int(value: Any) -> int | None:
    """Lenient int: '4', 4, '4(S:0-1)' -> 4; anything else -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


def make_allocation(**values: Any) -> dict:
    """An allocation summary with every key present (missing ones as None)."""
    return {key: values.get(key) for key in ALLOCATION_KEYS}


class BatchSystem(ABC):
    """One local scheduler: presence, role of this host, and the current allocation.

    Instances are cheap and stateless apart from the environment they were built with;
    `env` defaults to `os.environ` so tests can pass a fake one.
    """

    #: short identifier: "slurm", "pbs", "none"
    name: ClassVar[str] = "none"
    #: the PSI/J executor matching this scheduler
    psij_executor: ClassVar[str] = "local"
    #: detection order: lower is tried first
    priority: ClassVar[int] = 100
    #: environment variables that carry the id of the job we run in
    job_id_vars: ClassVar[tuple[str, ...]] = ()

    def __init__(self, env: Mapping[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.env: dict[str, str] = dict(os.environ if env is None else env)
        self.timeout = timeout

    @classmethod
    @abstractmethod
    def available(cls, env: Mapping[str, str] | None = None) -> bool:
        """True when this scheduler's client tools are usable from this host."""

    @classmethod
    def job_id_from_env(cls, env: Mapping[str, str] | None = None) -> str | None:
        """The id of the job `env` belongs to, if any (no command is run)."""
        env = os.environ if env is None else env
        for var in cls.job_id_vars:
            value = (env.get(var) or "").strip()
            if value:
                return value
        return None

    def job_id(self) -> str | None:
        return self.job_id_from_env(self.env)

    def in_allocation(self) -> bool:
        """True when this process runs inside a batch job (a compute node)."""
        return self.job_id() is not None

    @abstractmethod
    def allocation(self) -> dict | None:
        """Summary of the job we run in (see `ALLOCATION_KEYS`), None on a login node.

        Never raises: fields the scheduler cannot tell are None.
        """

    def partitions(self) -> list[dict]:
        """The scheduler's queues as ``{name, default, cpus_per_node, gpus_per_node,
        max_minutes}`` (smallest node of each; None = unknown/unlimited); [] when the
        backend cannot tell. Never raises."""
        return []

    def cancel_jobs_under(self, path: str) -> list[str]:
        """Cancel this user's jobs whose working directory lies under `path` (a last resort
        for work a tool submitted and failed to cancel); their ids. Never raises."""
        return []

    def job_allocation(self) -> dict | None:
        """Alias kept for readers of the original plugin API."""
        return self.allocation()

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CmdResult:
        """Run a scheduler command with this instance's environment and timeout."""
        return run_command(argv, timeout or self.timeout, self.env)

    def describe(self) -> dict:
        """What sysinfo's `host_role` and the edge announcement say about the scheduler."""
        return {"scheduler": self.name, "role": "compute" if self.in_allocation() else "login",
                "job_id": self.job_id()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} job={self.job_id()!r}>"
