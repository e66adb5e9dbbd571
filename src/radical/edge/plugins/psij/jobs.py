"""Job specs and job state for the psij plugin: pure Python, psij-python imported lazily.

* `parse_job_spec` validates the JSON a client sends (the seed's shape: ``executable``,
  ``arguments``, ``directory``, ``environment``, ``attributes: {duration, queue_name, account,
  reservation_id, node_count, custom_attributes, "slurm.xxx": ...}``, ``resources``) into a
  `JobRequest`; anything malformed is a `JobSpecError` (HTTP 422) with a precise message.
* `build_psij_spec` turns a `JobRequest` into a ``psij.JobSpec`` for one executor, working
  around psij-python 0.1 quirks (see the functions' docstrings).
* `JobRecord` is one job's state as the edge reports it. `JobRecord.apply` decides whether a
  psij status is a *new* transition: states only move forward (NEW < QUEUED < ACTIVE <
  terminal), so every state is notified exactly once and at most one terminal state exists,
  whatever thread psij reports from and however often.
* `read_chunk` reads job output incrementally by byte offset.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

#: PSI/J states and their order (terminal states share the last rank)
STATE_ORDER = {"NEW": 0, "QUEUED": 1, "ACTIVE": 2, "COMPLETED": 3, "FAILED": 3, "CANCELED": 3}
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELED"})

#: executor names clients may use that psij-python spells differently
EXECUTOR_ALIASES = {"pbs": "pbspro", "pbs_pro": "pbspro", "openpbs": "pbspro"}
#: psij executors that submit a generated batch script (environment goes via pre_launch)
BATCH_EXECUTORS = frozenset({"slurm", "pbspro", "lsf", "cobalt"})

#: largest output chunk one status call returns per stream (the rest comes next call)
MAX_CHUNK = 1024 * 1024
#: bytes of each stream attached to the terminal job_status notification
NOTIFY_TAIL = 4096

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CUSTOM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\.[A-Za-z0-9][A-Za-z0-9_-]*$")
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
_RESOURCE_INTS = ("node_count", "process_count", "processes_per_node", "cpu_cores_per_process",
                  "gpu_cores_per_process")


class JobSpecError(ValueError):
    """A job spec the plugin refuses; `status` is the HTTP status to answer with."""

    status = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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
        """The spec fields a status answer echoes (CONTRACT §6)."""
        return {"executable": self.executable, "arguments": list(self.arguments),
                "directory": self.directory, "queue_name": self.queue_name,
                "account": self.account, "node_count": self.node_count,
                "duration": self.duration}


# -- validation -------------------------------------------------------------------------------
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
        seconds = float(value)
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
    bad = sorted(set(res) - set(_RESOURCE_INTS) - {"exclusive_node_use"})
    if bad:
        raise JobSpecError(f"unknown job_spec.resources field(s): {', '.join(bad)}")
    for key in _RESOURCE_INTS:
        setattr(req, key, _positive_int(res.get(key), f"resources.{key}"))
    node_count = _positive_int(merged.get("node_count"), "node_count")
    if node_count is not None:
        if req.node_count is not None and req.node_count != node_count:
            raise JobSpecError(f"node_count given twice with different values "
                               f"({node_count} and {req.node_count})")
        req.node_count = node_count
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
    """The psij executor name for `name` ('pbs' -> 'pbspro'); 422 when psij has none."""
    if not isinstance(name, str) or not name.strip():
        raise JobSpecError("executor must be a non-empty string such as 'local' or 'slurm'")
    canon = EXECUTOR_ALIASES.get(name.strip().lower(), name.strip().lower())
    if known is not None and canon not in known:
        raise JobSpecError(f"unknown executor {name!r}; this edge has: "
                           f"{', '.join(sorted(set(known) | {'pbs'}))}")
    return canon


# -- psij-python --------------------------------------------------------------------------------
class _SlurmWalltime(timedelta):
    """psij renders `duration` with str(): make that 'D-HH:MM:SS', which sbatch accepts
    (str(timedelta) gives '1 day, 2:00:00' beyond a day, which sbatch rejects)."""

    def __str__(self) -> str:
        total = int(self.total_seconds())
        days, rest = divmod(total, 86400)
        text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
        return f"{days}-{text}" if days else text


class _HMSWalltime(timedelta):
    """'HHH:MM:SS' with hours beyond 24, the form PBS and LSF templates expect."""

    def __str__(self) -> str:
        total = int(self.total_seconds())
        return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def walltime(seconds: int, executor: str) -> timedelta:
    cls = _SlurmWalltime if executor == "slurm" else _HMSWalltime
    return cls(seconds=seconds)


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
    * PBS: psij-python 0.1's template reads `queueName`/`projectName` (never set), so queue and
      account become the custom attributes `pbs.q` / `pbs.A` (rendered ``#PBS -q ...``).
    * resources: `exclusive_node_use` defaults to False here (psij's default True would ask
      for whole nodes).
    """
    import psij

    custom = dict(req.custom_attributes)
    queue, account = req.queue_name, req.account
    if executor == "pbspro":
        if queue:
            custom.setdefault("pbs.q", queue)
        if account:
            custom.setdefault("pbs.A", account)
        queue = account = None
    attr_kwargs: dict[str, Any] = {"queue_name": queue, "project_name": account,
                                   "reservation_id": req.reservation,
                                   "custom_attributes": custom or None}
    if req.duration is not None:
        attr_kwargs["duration"] = walltime(req.duration, executor)
    attributes = psij.JobAttributes(**attr_kwargs)

    resources = None
    if any(getattr(req, k) is not None for k in _RESOURCE_INTS) or req.exclusive_node_use:
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


# -- output ---------------------------------------------------------------------------------------
def _utf8_safe_end(data: bytes) -> int:
    """Length of `data` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: keep looking for the lead byte
            continue
        if byte & 0x80 == 0:  # ASCII
            return len(data)
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
        return len(data) if back >= need else len(data) - back
    return len(data)


def read_chunk(path: str | None, offset: int, limit: int = MAX_CHUNK,
               complete: bool = False) -> tuple[str, int]:
    """Text from byte `offset` of `path` (at most `limit` bytes) and the next offset.

    A multi-byte character cut at the end of what is there is left for the next call, unless
    `complete` (the job has ended: nothing more will come). A missing file reads as empty.
    """
    if not path:
        return "", offset
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return "", offset
    if not complete or len(data) == limit:
        data = data[:_utf8_safe_end(data)]
    return data.decode("utf-8", "replace"), offset + len(data)


def tail(path: str | None, size: int = NOTIFY_TAIL) -> str | None:
    """The last `size` bytes of `path` as text, None when there is no such file."""
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return None


# -- state ----------------------------------------------------------------------------------------
class JobRecord:
    """One job of a session: its spec, where its output goes, and its reported state.

    psij calls back from its own threads (submit caller, queue poller, process reaper); all
    changes go through `apply` under `lock`.
    """

    def __init__(self, job_id: str, executor: str, req: JobRequest, stdout_path: str,
                 stderr_path: str, *, edge_name: str | None = None) -> None:
        self.lock = threading.RLock()
        self.job_id = job_id
        self.executor = executor
        self.request = req
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.edge_name = edge_name
        self.native_id: str | None = None
        self.state = "NEW"
        self.exit_code: int | None = None
        self.message: str | None = None
        self.time = time.time()
        self.submitted = self.time
        self.notified: list[str] = []
        self.job: Any = None  # the psij.Job
        #: called (any thread) after each new transition: on_change(record, notification)
        self.on_change: Any = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def apply(self, state: str, *, exit_code: int | None = None, message: str | None = None,
              when: float | None = None, native_id: Any = None) -> dict | None:
        """Record a status; the job_status notification to send, or None if not new.

        Only forward moves count: a repeated or older state (a late callback from another
        thread, a poller reporting ACTIVE twice) is ignored, so each state is announced once.
        """
        with self.lock:
            if native_id is not None and self.native_id is None:
                self.native_id = str(native_id)
            rank = STATE_ORDER.get(state)
            if rank is None or rank <= STATE_ORDER[self.state]:
                return None
            self.state = state
            self.time = when or time.time()
            if message is not None:
                self.message = message
            if exit_code is not None:
                self.exit_code = exit_code
            self.notified.append(state)
            note: dict[str, Any] = {"job_id": self.job_id, "native_id": self.native_id,
                                    "state": state, "time": self.time,
                                    "executor": self.executor}
            if self.edge_name:
                note["edge_name"] = self.edge_name
            if state in FINAL_STATES:
                note["exit_code"] = self.exit_code
                note["message"] = self.message
                note["stdout"] = tail(self.stdout_path)
                note["stderr"] = tail(self.stderr_path)
            return note

    def describe(self) -> dict[str, Any]:
        """The status fields without output (list_jobs rows; CONTRACT §6 keys)."""
        with self.lock:
            out: dict[str, Any] = {"job_id": self.job_id, "native_id": self.native_id,
                                   "state": self.state, "message": self.message,
                                   "exit_code": self.exit_code, "time": self.time,
                                   "submitted": self.submitted, "executor": self.executor,
                                   **self.request.summary(),
                                   "stdout_path": self.stdout_path,
                                   "stderr_path": self.stderr_path}
            if self.edge_name:
                out["edge_name"] = self.edge_name
            return out

    def status(self, stdout_offset: int = 0, stderr_offset: int = 0) -> dict[str, Any]:
        """`describe()` plus output from the given byte offsets (CONTRACT §6 `status`)."""
        out = self.describe()
        done = out["state"] in FINAL_STATES
        out["stdout"], out["stdout_offset"] = read_chunk(self.stdout_path, stdout_offset,
                                                         complete=done)
        out["stderr"], out["stderr_offset"] = read_chunk(self.stderr_path, stderr_offset,
                                                         complete=done)
        return out
