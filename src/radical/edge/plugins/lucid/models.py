"""Request and answer shapes of the lucid routes (CONTRACT section 7), for the API
description; `spec` checks the descriptions themselves."""
from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict


class DescriptionBody(TypedDict):
    description: dict[str, Any]  # a RADICAL-Pilot pilot or task description


class PilotSubmitted(TypedDict):
    pid: str


class TaskSubmitted(TypedDict):
    tid: str


class TaskResult(TypedDict):
    tid: str
    task: dict[str, Any]  # the task as RADICAL-Pilot reports it, with its stdout
