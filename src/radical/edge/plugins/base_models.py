"""Answer shapes of the routes every plugin has (for the published API description)."""
from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict  # pydantic describes only this one on 3.11


class SessionCreated(TypedDict):
    sid: str


class Ok(TypedDict):
    ok: bool


class VersionInfo(TypedDict):
    version: str


class SessionList(TypedDict):
    sessions: list[str]


class Health(TypedDict):
    status: str
    plugin: str
    version: str
    uptime_seconds: float
    active_sessions: int


class UIConfigInfo(TypedDict):
    plugin_name: str | None
    instance_name: str
    version: str
    ui: dict[str, Any] | None
