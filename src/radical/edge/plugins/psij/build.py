"""The psij ``JobSpec`` for a validated `JobRequest`, and fixes to the scripts psij writes.

`build_psij_spec` turns a `JobRequest` into a ``psij.JobSpec`` for one executor, working
around psij-python quirks (see the functions' docstrings); psij-python (>= 0.9.11) is
imported lazily, inside the functions that need it.
"""
from __future__ import annotations

import re
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Any

from .spec import RESOURCE_INTS, JobRequest, JobSpecError

#: psij executors that submit a generated batch script (environment goes via pre_launch)
BATCH_EXECUTORS = frozenset({"slurm", "pbs", "pbs_classic", "lsf", "cobalt"})


def format_walltime(duration: timedelta, executor: str) -> str:
    """'D-HH:MM:SS' for SLURM, 'HHH:MM:SS' (hours beyond 24) for PBS and LSF: zero-padded
    (psij's own rendering is '1-0:0:0', which some sites' submit filters reject)."""
    total = int(duration.total_seconds())
    if executor == "slurm":
        days, rest = divmod(total, 86400)
        text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
        return f"{days}-{text}" if days else text
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def walltime(seconds: int, executor: str) -> timedelta:
    """The psij `duration`; the executor renders it with `format_walltime` (executors.py)."""
    return timedelta(seconds=seconds)


def env_script(environment: dict[str, str], then_source: str | None = None) -> str:
    """A bash snippet exporting `environment` (used as psij `pre_launch` on batch executors).

    psij-python 0.1's SLURM template writes the environment as ``#SBATCH --export=K=V``
    lines, which loses values with commas or spaces and keeps quotes literally; a sourced
    pre-launch file sets the exact values on the node where the job starts.
    """
    lines = ["# written by radical.edge psij plugin: job environment"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in environment.items()]
    if then_source:
        lines.append(f"source {shlex.quote(then_source)}")
    return "\n".join(lines) + "\n"


def build_psij_spec(req: JobRequest, executor: str, *, stdout_path: str, stderr_path: str,
                    env_file: str | None = None) -> Any:
    """A ``psij.JobSpec`` for `req` on `executor` (psij-python imported here, not at import).

    * batch executors: the environment goes through `env_file` (see `env_script`), which the
      caller has written; local jobs get it directly (psij passes it to Popen).
    * resources: `exclusive_node_use` defaults to False here (psij's default True would ask
      for whole nodes).
    """
    import psij

    custom = dict(req.custom_attributes)
    attr_kwargs: dict[str, Any] = {"queue_name": req.queue_name, "account": req.account,
                                   "reservation_id": req.reservation,
                                   "custom_attributes": custom or None}
    if req.duration is not None:
        attr_kwargs["duration"] = walltime(req.duration, executor)
    attributes = psij.JobAttributes(**attr_kwargs)

    resources = None
    if any(getattr(req, k) is not None for k in RESOURCE_INTS) or req.exclusive_node_use:
        try:
            resources = psij.ResourceSpecV1(
                node_count=req.node_count, process_count=req.process_count,
                processes_per_node=req.processes_per_node,
                cpu_cores_per_process=req.cpu_cores_per_process,
                gpu_cores_per_process=req.gpu_cores_per_process,
                exclusive_node_use=req.exclusive_node_use)
        except Exception as exc:  # psij checks count consistency
            raise JobSpecError(f"resources: {exc}") from None

    environment: dict[str, str] | None = dict(req.environment) or None
    pre_launch = req.pre_launch
    if executor in BATCH_EXECUTORS and env_file is not None:
        environment, pre_launch = None, env_file

    return psij.JobSpec(
        name=req.name, executable=req.executable, arguments=list(req.arguments),
        directory=Path(req.directory) if req.directory else None,
        inherit_environment=req.inherit_environment, environment=environment,
        stdin_path=Path(req.stdin_path) if req.stdin_path else None,
        stdout_path=Path(stdout_path), stderr_path=Path(stderr_path),
        resources=resources, attributes=attributes,
        pre_launch=Path(pre_launch) if pre_launch else None,
        post_launch=Path(req.post_launch) if req.post_launch else None,
        launcher=req.launcher)


_DIRECTIVE = re.compile(r'^(#(?:SBATCH|PBS|BSUB)\s+-{1,2}[\w.-]+(?:=|\s+))"(.*)"$')


def unquote_directives(script: str) -> str:
    """Undo psij's shell quoting inside scheduler directives.

    psij renders ``#SBATCH --comment="{{value}}"`` with a bash escaper, so a value with a
    space arrives as ``--comment="'a b'"``; sbatch/qsub parse directives themselves (not with
    bash) and would keep the single quotes. Such lines get the plain value back.
    """
    out = []
    for line in script.splitlines(keepends=True):
        body = line.rstrip("\n")
        m = _DIRECTIVE.match(body)
        if m and "'" in m.group(2):
            try:
                parts = shlex.split(m.group(2))
            except ValueError:
                parts = []
            if len(parts) == 1 and '"' not in parts[0]:
                line = f'{m.group(1)}"{parts[0]}"' + line[len(body):]
        out.append(line)
    return "".join(out)
