"""Request and answer shapes of the psij routes (CONTRACT sections 2 and 6), for the API
description. `spec.parse_job_spec` is what checks a job spec; this only documents it."""
from __future__ import annotations

from typing import Any

from typing_extensions import NotRequired, TypedDict


class JobSpec(TypedDict):
    executable: str
    arguments: NotRequired[list[str]]
    directory: NotRequired[str]
    environment: NotRequired[dict[str, str]]
    inherit_environment: NotRequired[bool]
    name: NotRequired[str]
    stdin_path: NotRequired[str]
    stdout_path: NotRequired[str]
    stderr_path: NotRequired[str]
    pre_launch: NotRequired[str]
    post_launch: NotRequired[str]
    launcher: NotRequired[str]
    resources: NotRequired[dict[str, Any]]  # node_count, process_count, ... (psij)
    attributes: NotRequired[dict[str, Any]]  # duration, queue_name, account, ...
    duration: NotRequired[Any]  # seconds or "[D-]HH:MM:SS"
    queue_name: NotRequired[str]
    account: NotRequired[str]
    node_count: NotRequired[int]
    custom_attributes: NotRequired[dict[str, Any]]


class SubmitBody(TypedDict):
    job_spec: JobSpec
    executor: NotRequired[str]  # "local" (default), "slurm", "pbs", ...


class SubmitTunneledBody(SubmitBody):
    tunnel: NotRequired[bool]  # reach Redis through a reverse SSH tunnel


class StatusQuery(TypedDict):
    stdout_offset: NotRequired[int]  # bytes of stdout already read
    stderr_offset: NotRequired[int]


class Submitted(TypedDict):
    job_id: str
    native_id: str | None
    state: str
    executor: NotRequired[str]
    edge_name: NotRequired[str]  # submit_tunneled: the child edge's name


class JobStatus(TypedDict):
    job_id: str
    native_id: str | None
    state: str  # NEW, QUEUED, ACTIVE, COMPLETED, FAILED, CANCELED
    message: Any
    exit_code: int | None
    time: Any
    executable: str
    arguments: list[str]
    executor: str
    directory: Any
    queue_name: Any
    account: Any
    node_count: Any
    duration: Any
    stdout: str
    stderr: str
    stdout_offset: int
    stderr_offset: int


class JobList(TypedDict):
    jobs: list[dict[str, Any]]


class Canceled(TypedDict):
    job_id: str
    native_id: str | None
    state: str
    canceled: bool
    exit_code: NotRequired[int | None]


class Executors(TypedDict):
    executors: list[str]  # usable here: psij has them and their submit tool is on PATH
    unavailable: dict[str, str]  # the others, with why
    default: str


class LaunchLog(TypedDict):
    """Why a launched child edge did not join: its job's stderr and its own log's tail."""
    job_id: str
    native_id: str | None
    edge_name: str
    state: str
    exit_code: int | None
    message: str | None
    stderr: str
    log_path: str | None
    log: str | None
    log_note: str | None
