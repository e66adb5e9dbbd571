"""Child edges inside batch jobs: the job spec that starts one, and where a job runs.

A parent edge (usually on a login node) submits a batch job that runs
``scripts/radical-edge-wrapper.sh -n NAME [--tunnel] [edge options]``. The wrapper finds the
right Python, sets PATH/PYTHONPATH, logs to a file and ``exec``s ``python -m
radical.edge.cli edge`` so the scheduler's signals reach the edge. The child joins the same
Redis as its parent (or, with a tunnel, a port the parent forwards over SSH, see
`.tunnel`) and shows up in ``/edge/list`` with role ``compute`` and its allocation.

What the job gets in its environment (explicit values in the client's job_spec win):

``RADICAL_EDGE_REDIS_URL``   the parent's Redis URL (never on the command line: ps shows it),
                             unless the client's spec holds ``RADICAL_EDGE_ENROLL_TOKEN`` (then
                             the child enrolls at the bridge given as ``--url``)
``RADICAL_EDGE_REDIS_PREFIX`` the parent's Redis key prefix (its deployment)
``RADICAL_EDGE_PYTHON``      the parent's interpreter (its venv), so the child runs the same code
``RADICAL_EDGE_PYTHONPATH``  the directory `radical.edge` was imported from, for source trees
``RADICAL_EDGE_TUNNEL_FILE`` / ``RADICAL_EDGE_TUNNEL_TOKEN``  with a tunnel: where the parent
                             writes ``"<port> <token>"`` once the tunnel is up
"""
from __future__ import annotations

import copy
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from ...errors import StatusError
from ...app import keys
from ...settings import REDIS_PREFIX_ENV, LaunchSettings
from ...sdk.credentials import is_local as is_loopback_url
from ..batch.base import run_command

WRAPPER_NAME = "radical-edge-wrapper.sh"
#: environment variable naming the wrapper script to use
WRAPPER_ENV = "RADICAL_EDGE_WRAPPER"

__all__ = [
    "WRAPPER_NAME",
    "LaunchError",
    "LaunchSettings",
    "TunnelPlan",
    "child_job_spec",
    "edge_name_from_args",
    "find_wrapper",
    "is_loopback_url",
    "job_node",
    "redis_endpoint",
    "source_root",
]


class LaunchError(StatusError, ValueError):
    """A child-edge launch that cannot work; `status` is the HTTP status to answer with."""

    def __init__(self, detail: str, status: int = 422) -> None:
        super().__init__(detail, status)


@dataclass(frozen=True)
class TunnelPlan:
    """What the child needs to find its tunnel: the port file and the token it must hold."""

    port_file: str
    token: str


def source_root() -> str:
    """The directory holding the `radical` namespace package this process runs."""
    return str(Path(__file__).resolve().parents[4])


def find_wrapper() -> str | None:
    """``$RADICAL_EDGE_WRAPPER``, else ``scripts/`` of this source tree, else next to the
    interpreter (a venv's ``bin/``, where an installed copy lands), else PATH."""
    candidates = [LaunchSettings().wrapper or "",
                  str(Path(source_root()).parent / "scripts" / WRAPPER_NAME),
                  str(Path(sys.executable).parent / WRAPPER_NAME)]
    for path in candidates:
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    return shutil.which(WRAPPER_NAME)


def edge_name_from_args(args: Sequence[Any] | None) -> str | None:
    """The value of ``-n NAME``, ``--name NAME``, ``--name=NAME`` or ``-nNAME`` in `args`."""
    items = [str(a) for a in (args or [])]
    for i, arg in enumerate(items):
        if arg in ("-n", "--name"):
            return items[i + 1] if i + 1 < len(items) and items[i + 1] else None
        if arg.startswith("--name="):
            return arg.split("=", 1)[1] or None
        if arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            return arg[2:]
    return None


def redis_endpoint(url: str) -> tuple[str, int]:
    """(host, port) of a TCP Redis URL; a `LaunchError` for unix sockets or garbage."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise LaunchError(f"a tunnel needs a TCP Redis URL (redis:// or rediss://), "
                          f"not {parts.scheme or url!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise LaunchError(f"bad port in Redis URL {url!r}") from None
    return parts.hostname or "127.0.0.1", port




def child_job_spec(job_spec: dict, edge_name: str, redis_url: str, *,
                   tunnel: TunnelPlan | None = None,
                   python: str | None = None) -> dict:
    """The job spec that starts child edge `edge_name` (the client's spec, completed).

    * no executable, or the bare wrapper name: this installation's wrapper script
    * ``--tunnel`` is appended to the arguments when tunneling (the wrapper waits for it)
    * the job environment gets the variables listed in the module docstring
    * the job name defaults to ``redge-<edge_name>``
    """
    spec = copy.deepcopy(job_spec)
    exe = spec.get("executable")
    if not exe or (isinstance(exe, str) and "/" not in exe and exe == WRAPPER_NAME
                   and shutil.which(exe) is None):
        wrapper = find_wrapper()
        if wrapper is None:
            raise LaunchError(f"no {WRAPPER_NAME} found: set {WRAPPER_ENV} on the edge or "
                              "pass job_spec.executable", status=500)
        spec["executable"] = wrapper
    args = list(spec.get("arguments") or [])
    if tunnel is not None and "--tunnel" not in args:
        args.append("--tunnel")
    spec["arguments"] = args
    env = dict(spec.get("environment") or {})
    if "RADICAL_EDGE_ENROLL_TOKEN" not in env:  # an enrolling child gets its own credentials
        env.setdefault("RADICAL_EDGE_REDIS_URL", redis_url)
    env.setdefault(REDIS_PREFIX_ENV, keys.PREFIX)  # the child joins this deployment
    env.setdefault("RADICAL_EDGE_PYTHON", python or sys.executable)
    env.setdefault("RADICAL_EDGE_PYTHONPATH", source_root())
    if tunnel is not None:
        env["RADICAL_EDGE_TUNNEL_FILE"] = tunnel.port_file
        env["RADICAL_EDGE_TUNNEL_TOKEN"] = tunnel.token
    spec["environment"] = env
    spec.setdefault("name", f"redge-{edge_name}")
    return spec


# -- where does a job run? ------------------------------------------------------------------------
def _slurm_node(native_id: str, timeout: float) -> str | None:
    from ..batch.slurm import expand_hostlist, parse_kv_line

    res = run_command(["squeue", "-h", "-j", native_id, "-o", "%N"], timeout)
    hosts = expand_hostlist(res.stdout.strip().splitlines()[0]) if res.ok and \
        res.stdout.strip() else []
    if not hosts:
        return None
    node = hosts[0]
    res = run_command(["scontrol", "show", "node", "-o", node], timeout)
    if res.ok and res.stdout.strip():
        addr = parse_kv_line(res.stdout.strip().splitlines()[0]).get("NodeAddr")
        if addr:
            return addr
    return node


def _pbs_node(native_id: str, timeout: float) -> str | None:
    from ..batch.pbs import exec_hosts, loads_pbs_json

    res = run_command(["qstat", "-f", "-F", "json", native_id], timeout)
    if not res.ok:
        return None
    try:
        jobs = loads_pbs_json(res.stdout).get("Jobs") or {}
    except ValueError:
        return None
    record = next(iter(jobs.values()), {}) if jobs else {}
    hosts = exec_hosts(record.get("exec_host"))
    return hosts[0] if hosts else None


def _lsf_node(native_id: str, timeout: float) -> str | None:
    res = run_command(["bjobs", "-noheader", "-o", "exec_host", native_id], timeout)
    first = res.stdout.strip().split(":")[0] if res.ok else ""
    return first.split("*")[-1] or None


def job_node(executor: str, native_id: str | None, timeout: float = 15.0) -> str | None:
    """Host name or address of the (first) node a running job is on; None if unknown.

    Blocking (runs the scheduler's commands): call it from a thread.
    """
    if executor == "local":
        return "127.0.0.1"
    if not native_id:
        return None
    if executor == "slurm":
        return _slurm_node(native_id, timeout)
    if executor in ("pbs", "pbs_classic"):
        return _pbs_node(native_id, timeout)
    if executor == "lsf":
        return _lsf_node(native_id, timeout)
    return None
