"""logs.py: one line per record, with the process and call context, text or JSON."""
from __future__ import annotations

import asyncio
import json
import logging
import warnings

import pytest

from radical.edge import logs


@pytest.fixture
def record_of():
    def make(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
        exc_info = (type(exc), exc, exc.__traceback__) if exc else None
        return logging.LogRecord("radical.edge.x", logging.ERROR, __file__, 1, msg, args,
                                 exc_info)
    yield make
    logs._PROCESS.clear()


def _raised() -> BaseException:
    try:
        raise ValueError("bad\nvalue")
    except ValueError as exc:
        return exc


def test_text_line_carries_context_and_folds_the_exception(record_of):
    logs.set_process_context(component="edge", edge="e1")
    with logs.log_context(plugin="psij", call="c-1"):
        line = logs.TextFormatter(keep_traceback=False).format(
            record_of("handler %s failed", "GET /x", exc=_raised()))
    assert "\n" not in line
    assert line.endswith("handler GET /x failed [component=edge edge=e1 plugin=psij call=c-1]"
                         " | ValueError: bad value")
    assert " ERROR radical.edge.x: " in line


def test_debug_keeps_the_traceback(record_of):
    line = logs.TextFormatter(keep_traceback=True).format(record_of("x", exc=_raised()))
    assert "Traceback (most recent call last)" in line and "ValueError: bad" in line


def test_json_lines(record_of):
    logs.set_process_context(component="bridge")
    out = json.loads(logs.JSONFormatter(keep_traceback=False).format(
        record_of("edge '%s' joined", "n1", exc=_raised())))
    assert out["level"] == "ERROR" and out["message"] == "edge 'n1' joined"
    assert out["component"] == "bridge" and out["exc"] == "ValueError: bad value"
    assert out["time"].endswith("Z")


def test_call_context_stays_in_its_task():
    async def call(cid: str) -> dict:
        logs.set_call_context(call=cid)
        await asyncio.sleep(0)
        return logs.context()

    async def main() -> list:
        return await asyncio.gather(call("a"), call("b"))

    assert [c["call"] for c in asyncio.run(main())] == ["a", "b"]
    assert "call" not in logs.context()


def test_celery_root_warning_is_filtered():
    from celery.platforms import ROOT_DISCOURAGED, SecurityWarning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        logs.quiet_celery_root_warning()
        warnings.warn(SecurityWarning(ROOT_DISCOURAGED.format(uid=0, euid=0, gid=0, egid=0)))
        warnings.warn(SecurityWarning("another security warning"))
    assert [str(w.message) for w in seen] == ["another security warning"]
