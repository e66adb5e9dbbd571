"""Job specs for the psij plugin: what a client may send, validated; pure Python.

`parse_job_spec` validates the JSON a client sends (the seed's shape: ``executable``,
``arguments``, ``directory``, ``environment``, ``attributes: {duration, queue_name, account,
reservation_id, node_count, custom_attributes, "slurm.xxx": ...}``, ``resources``) into a
`JobRequest`; anything malformed is a `JobSpecError` (HTTP 422) with a precise message.
`normalize_executor` maps the executor names clients use to psij-python's.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import StatusError

#: executor names clients may use that psij-python spells differently
#: names users (and psij-python before 0.9) call the PBS Pro executor; psij 0.9 names it 'pbs'
EXECUTOR_ALIASES = {"pbspro": "pbs", "pbs_pro": "pbs", "openpbs": "pbs"}

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CUSTOM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\.[A-Za-z0-9][A-Za-z0-9_-]*$")
#: longest walltime accepted (s): beyond this a number is a mistake, and timedelta overflows
MAX_DURATION = 10 * 366 * 86400
_DURATION = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")

_SPEC_KEYS = {"executable", "arguments", "directory", "environment", "inherit_environment",
              "name", "stdin_path", "stdout_path", "stderr_path", "pre_launch", "post_launch",
              "launcher", "resources", "attributes",
              # accepted at the top level too (the portal form sends them flat)
              "duration", "queue_name", "queue", "partition", "account", "project_name",
              "project", "reservation_id", "reservation", "node_count", "custom_attributes"}
_ATTR_ALIASES = {"duration": "duration", "walltime": "duration",
                 "queue_name": "queue_name", "queue": "queue_name", "partition": "queue_name",
                 "account": "account", "project_name": "account", "project": "account",
                 "reservation_id": "reservation", "reservation": "reservation",
                 "node_count": "node_count", "custom_attributes": "custom_attributes"}
#: the integer fields of ``job_spec.resources`` (psij's `ResourceSpecV1` counts)
RESOURCE_INTS = ("node_count", "process_count", "processes_per_node", "cpu_cores_per_process",
                 "gpu_cores_per_process")
#: most processes (and so nodes) one job may ask for: psij-python >= 0.9 writes one nodefile
#: line per process before starting a local job, so 10**30 would hang the edge; no machine
#: runs more than this in one job
MAX_PROCESSES = 1_000_000


class JobSpecError(StatusError, ValueError):
    """A job spec the plugin refuses; `status` is the HTTP status to answer with."""

    status = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


@dataclass
class JobRequest:
    """A validated job spec, independent of psij-python."""

    executable: str
    arguments: list[str] = field(default_factory=list)
    directory: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    inherit_environment: bool = True
    name: str | None = None
    stdin_path: str | None = None
    stdout_path: str | None = None
    stderr_path: str | None = None
    pre_launch: str | None = None
    post_launch: str | None = None
    launcher: str | None = None
    duration: int | None = None  # seconds
    queue_name: str | None = None
    account: str | None = None
    reservation: str | None = None
    node_count: int | None = None
    process_count: int | None = None
    processes_per_node: int | None = None
    cpu_cores_per_process: int | None = None
    gpu_cores_per_process: int | None = None
    exclusive_node_use: bool = False
    custom_attributes: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The spec fields a status answer echoes."""
        return {"executable": self.executable, "arguments": list(self.arguments),
                "directory": self.directory, "queue_name": self.queue_name,
                "account": self.account, "node_count": self.node_count,
                "duration": self.duration}


def _text(value: Any, what: str, *, allow_empty: bool = False) -> str:
    """A single-line string (numbers are accepted and converted)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise JobSpecError(f"{what} must be a string, not {type(value).__name__}")
    text = str(value)
    if not allow_empty and not text.strip():
        raise JobSpecError(f"{what} must not be empty")
    if "\n" in text or "\r" in text or "\x00" in text:
        raise JobSpecError(f"{what} must not contain newlines or NUL bytes")
    return text


def _opt_text(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return None
    return _text(value, what)


def _path(value: Any, what: str) -> str | None:
    """An absolute path ('~' expanded; relative paths are relative to the home directory)."""
    text = _opt_text(value, what)
    if text is None:
        return None
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = Path.home() / path
    return str(path)


def _positive_int(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise JobSpecError(f"{what} must be a positive integer, not a boolean")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise JobSpecError(f"{what} must be a positive integer, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise JobSpecError(f"{what} must be a whole number, got {value!r}")
    if number < 1:
        raise JobSpecError(f"{what} must be at least 1, got {number}")
    if number > MAX_PROCESSES:
        raise JobSpecError(f"{what} must be at most {MAX_PROCESSES}, got {number}")
    return number


def parse_duration(value: Any) -> int | None:
    """Walltime in seconds from seconds (int/float/'600') or '[D-]HH:MM[:SS]' / 'MM:SS'.

    Colon forms: 'H:MM:SS', 'MM:SS' (two fields), 'D-HH:MM:SS', 'D-HH:MM', 'D-HH'.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise JobSpecError("duration must be seconds or '[D-]HH:MM:SS', not a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value) if abs(value) < 1e300 else math.inf
    else:
        text = str(value).strip()
        m = _DURATION.match(text)
        if m is None:
            try:
                seconds = float(text)
            except ValueError:
                raise JobSpecError(f"duration {value!r} is neither seconds nor "
                                   "'[D-]HH:MM:SS'") from None
        else:
            days, a, b, c = m.groups()
            nums = [int(x) for x in (a, b, c) if x is not None]
            if days is not None:
                nums += [0] * (3 - len(nums))  # D-HH, D-HH:MM
                h, mi, s = nums
            elif len(nums) == 1:
                h, mi, s = 0, 0, nums[0]  # bare number: seconds
            elif len(nums) == 2:
                h, mi, s = 0, nums[0], nums[1]
            else:
                h, mi, s = nums
            seconds = int(days or 0) * 86400 + h * 3600 + mi * 60 + s
    if math.isnan(seconds) or seconds <= 0:
        raise JobSpecError(f"duration must be positive, got {value!r}")
    if seconds > MAX_DURATION:
        raise JobSpecError(f"duration must be at most {MAX_DURATION} s (10 years), "
                           f"got {str(value)[:40]!r}")
    return int(-(-seconds // 1))  # round up: never ask for less than requested


def _custom(key: Any, value: Any) -> tuple[str, str]:
    if not isinstance(key, str) or not _CUSTOM_KEY.match(key):
        raise JobSpecError(f"custom attribute name {key!r} must look like 'scheduler.option' "
                           "(e.g. 'slurm.constraint', 'pbs.l')")
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = _text(value, f"custom attribute {key!r}", allow_empty=True)
    if '"' in text:  # rendered inside double quotes in #SBATCH/#PBS directives
        raise JobSpecError(f"custom attribute {key!r} must not contain double quotes")
    return key, text


def parse_job_spec(raw: Any) -> JobRequest:
    """Validate a client's job spec; raises `JobSpecError` (422) naming the bad field."""
    if not isinstance(raw, dict):
        raise JobSpecError(f"job_spec must be a JSON object, not {type(raw).__name__}")
    unknown = sorted(set(raw) - _SPEC_KEYS)
    if unknown:
        raise JobSpecError(f"unknown job_spec field(s): {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(_SPEC_KEYS - {'queue', 'partition', 'project'}))}")
    if raw.get("executable") in (None, ""):
        raise JobSpecError("job_spec.executable is required")
    req = JobRequest(executable=_text(raw["executable"], "job_spec.executable"))

    args = raw.get("arguments")
    if args is None:
        args = []
    if not isinstance(args, list):
        raise JobSpecError("job_spec.arguments must be a list of strings "
                           f"(got {type(args).__name__}; split the command line yourself)")
    req.arguments = [_text(a, f"job_spec.arguments[{i}]", allow_empty=True)
                     for i, a in enumerate(args)]

    req.directory = _path(raw.get("directory"), "job_spec.directory")
    for key in ("stdin_path", "stdout_path", "stderr_path", "pre_launch", "post_launch"):
        setattr(req, key, _path(raw.get(key), f"job_spec.{key}"))
    req.name = _opt_text(raw.get("name"), "job_spec.name")
    if req.name and '"' in req.name:
        raise JobSpecError("job_spec.name must not contain double quotes")
    req.launcher = _opt_text(raw.get("launcher"), "job_spec.launcher")

    env = raw.get("environment")
    env = {} if env is None else env
    if not isinstance(env, dict):
        raise JobSpecError("job_spec.environment must be an object of NAME: value")
    for name, value in env.items():
        if not _ENV_NAME.match(str(name)):
            raise JobSpecError(f"job_spec.environment: invalid variable name {name!r}")
        if value is None:
            raise JobSpecError(f"job_spec.environment[{name!r}] must be a string, not null")
        req.environment[str(name)] = _text(value, f"job_spec.environment[{name!r}]",
                                           allow_empty=True)
    inherit = raw.get("inherit_environment", True)
    if not isinstance(inherit, bool):
        raise JobSpecError("job_spec.inherit_environment must be true or false")
    req.inherit_environment = inherit

    attrs = raw.get("attributes")
    attrs = {} if attrs is None else attrs
    if not isinstance(attrs, dict):
        raise JobSpecError("job_spec.attributes must be an object")
    merged: dict[str, Any] = {}
    for where, source in (("job_spec", {k: v for k, v in raw.items() if k in _ATTR_ALIASES}),
                          ("job_spec.attributes", attrs)):
        for key, value in source.items():
            if "." in key:
                k, v = _custom(key, value)
                merged.setdefault("custom_attributes", {})[k] = v
                continue
            canon = _ATTR_ALIASES.get(key)
            if canon is None:
                raise JobSpecError(
                    f"unknown attribute {where}.{key}; known: duration, queue_name, account, "
                    "reservation_id, node_count, custom_attributes, or 'scheduler.option' keys")
            if canon == "custom_attributes":
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise JobSpecError(f"{where}.custom_attributes must be an object")
                for ck, cv in value.items():
                    k, v = _custom(ck, cv)
                    merged.setdefault("custom_attributes", {})[k] = v
            else:
                merged[canon] = value
    req.duration = parse_duration(merged.get("duration"))
    req.queue_name = _opt_text(merged.get("queue_name"), "queue_name")
    req.account = _opt_text(merged.get("account"), "account")
    req.reservation = _opt_text(merged.get("reservation"), "reservation_id")
    req.custom_attributes = merged.get("custom_attributes", {})

    res = raw.get("resources")
    res = {} if res is None else res
    if not isinstance(res, dict):
        raise JobSpecError("job_spec.resources must be an object")
    bad = sorted(set(res) - set(RESOURCE_INTS) - {"exclusive_node_use"})
    if bad:
        raise JobSpecError(f"unknown job_spec.resources field(s): {', '.join(bad)}")
    for key in RESOURCE_INTS:
        setattr(req, key, _positive_int(res.get(key), f"resources.{key}"))
    node_count = _positive_int(merged.get("node_count"), "node_count")
    if node_count is not None:
        if req.node_count is not None and req.node_count != node_count:
            raise JobSpecError(f"node_count given twice with different values "
                               f"({node_count} and {req.node_count})")
        req.node_count = node_count
    processes = req.process_count or (req.node_count or 1) * (req.processes_per_node or 1)
    if processes > MAX_PROCESSES:
        raise JobSpecError(f"resources: {processes} processes in one job; at most "
                           f"{MAX_PROCESSES}")
    excl = res.get("exclusive_node_use", False)
    if not isinstance(excl, bool):
        raise JobSpecError("resources.exclusive_node_use must be true or false")
    req.exclusive_node_use = excl
    n, p, ppn = req.node_count, req.process_count, req.processes_per_node
    if n and p and ppn and n * ppn != p:
        raise JobSpecError(f"resources: process_count ({p}) must equal node_count ({n}) x "
                           f"processes_per_node ({ppn})")
    return req


def normalize_executor(name: Any, known: set[str] | frozenset[str] | None = None) -> str:
    """The psij executor name for `name` ('pbspro' -> 'pbs'); 422 when psij has none."""
    if not isinstance(name, str) or not name.strip():
        raise JobSpecError("executor must be a non-empty string such as 'local' or 'slurm'")
    canon = EXECUTOR_ALIASES.get(name.strip().lower(), name.strip().lower())
    if known is not None and canon not in known:
        raise JobSpecError(f"unknown executor {name!r}; this edge has: "
                           f"{', '.join(sorted(known))}")
    return canon
