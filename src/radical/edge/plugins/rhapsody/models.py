"""Request and answer shapes of the rhapsody routes (CONTRACT sections 2 and 6), for the
API description. `spec` and `bodies` are what check them; this only documents them."""
from __future__ import annotations

from typing import Any

from typing_extensions import NotRequired, TypedDict


class SessionArgs(TypedDict, total=False):
    backends: list[str]
    init_timeout: float
    notify_batch_window: float
    notify_batch_size: int


class TaskSpec(TypedDict, total=False):
    uid: str
    executable: str
    arguments: list[str]
    function: str  # an allowed import path "module:name"
    args: list[Any]
    kwargs: dict[str, Any]
    task_type: str
    backend: str


class SubmitBody(TypedDict):
    tasks: list[TaskSpec]


class WaitBody(TypedDict):
    uids: list[str]
    timeout: NotRequired[float | None]


class Task(TypedDict):
    uid: str
    state: str | None  # RUNNING, DONE, FAILED, CANCELED; null = pending
    exit_code: NotRequired[int | None]
    stdout: NotRequired[str | None]
    stderr: NotRequired[str | None]
    return_value: NotRequired[Any]
    error: NotRequired[Any]
    exception: NotRequired[Any]


class Canceled(TypedDict):
    canceled: int
