"""Validate pilot and task descriptions before RADICAL-Pilot sees them.

Only the fields listed here pass; anything else is a 422 naming the field, so a typo never
silently becomes a default (RP itself accepts and ignores unknown keys in places).
"""
from __future__ import annotations

import re
from typing import Any, Callable

from starlette.exceptions import HTTPException

DEFAULT_RESOURCE = "local.localhost"
MAX_OUTPUT = 64 * 1024  # bytes of a task's stdout/stderr sent back in a task dict


def _str(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 4096


def _int(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _match(pattern: str) -> Callable[[Any], bool]:
    """Values that reach a batch script or a config lookup: a strict name, no spaces,
    quotes, slashes or newlines."""
    rx = re.compile(pattern)
    return lambda v: isinstance(v, str) and len(v) <= 128 and rx.fullmatch(v) is not None


_NAME = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"


def _strs(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 1000 and all(isinstance(x, str) for x in v)


def _env(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str)
                                       for k, x in v.items())


PILOT_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "resource": (_match(rf"{_NAME}\.{_NAME}"),
                 "a resource label 'site.name' such as 'local.localhost' or 'edge.slurm'"),
    "cores": (_int(1, 1_000_000), "a whole number >= 1"),
    "gpus": (_int(0, 100_000), "a whole number >= 0"),
    "nodes": (_int(1, 100_000), "a whole number >= 1"),
    "runtime": (_int(1, 100_000), "minutes, a whole number >= 1"),
    "queue": (_match(rf"{_NAME}(:{_NAME})?"), "a queue name (RP: 'partition[:qos]')"),
    "project": (_match(rf"{_NAME}(:{_NAME})?"),
                "an account/project name (RP: 'account[:reservation]')"),
    "access_schema": (_match(r"[a-z][a-z0-9_+]*"), "an access schema such as 'local'"),
}

TASK_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "executable": (_str, "a program path or name"),
    "arguments": (_strs, "a list of strings"),
    "environment": (_env, "an object of string values"),
    "name": (_str, "a string"),
    "ranks": (_int(1, 1_000_000), "a whole number >= 1"),
    "cores_per_rank": (_int(1, 100_000), "a whole number >= 1"),
    "gpus_per_rank": (_int(0, 1_000), "a whole number >= 0"),
    "pre_exec": (_strs, "a list of shell commands"),
    "post_exec": (_strs, "a list of shell commands"),
}


def _check(kind: str, desc: Any, fields: dict, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise HTTPException(422, f"{kind} description must be a JSON object")
    unknown = sorted(set(desc) - set(fields))
    if unknown:
        raise HTTPException(422, f"unknown {kind} description field(s): {', '.join(unknown)}; "
                                 f"known: {', '.join(fields)}")
    for name in required:
        if name not in desc:
            raise HTTPException(422, f"{kind} description needs '{name}'")
    for name, value in desc.items():
        ok, what = fields[name]
        if not ok(value):
            raise HTTPException(422, f"{kind} description field '{name}' must be {what}")
    return dict(desc)


def pilot_description(desc: Any) -> dict[str, Any]:
    """A checked pilot description; `resource` defaults to local.localhost."""
    out = _check("pilot", desc, PILOT_FIELDS, ())
    out.setdefault("resource", DEFAULT_RESOURCE)
    out.setdefault("runtime", 30)
    if "cores" not in out and "nodes" not in out:
        out["cores"] = 1
    return out


def task_description(desc: Any) -> dict[str, Any]:
    """A checked task description (`executable` required)."""
    return _check("task", desc, TASK_FIELDS, ("executable",))


def body_description(body: Any) -> Any:
    """`{"description": {...}}` -> the description (422 for any other body)."""
    if not isinstance(body, dict) or set(body) != {"description"}:
        raise HTTPException(422, 'expected a body {"description": {...}}')
    return body["description"]
