"""Which optional packages (pip extras) a command needs, and a one-line error without them.

`pip install radical.edge` is the client (httpx); the roles are extras. A server command
run on a client install stops with the `pip install` line that fixes it instead of an
ImportError traceback.
"""
from __future__ import annotations

import importlib.util

_SERVER = ("celery", "redis", "pydantic_settings", "orjson")
#: extra -> top-level modules it provides (checked, not imported: checking is cheap)
EXTRAS: dict[str, tuple[str, ...]] = {
    "bridge": (*_SERVER, "fastapi", "uvicorn", "sse_starlette", "prometheus_client"),
    "edge": (*_SERVER, "starlette", "psutil"),
    "flower": (*_SERVER, "flower"),
    "all": (*_SERVER, "fastapi", "uvicorn", "sse_starlette", "prometheus_client", "starlette",
            "psutil"),
}


class MissingExtra(RuntimeError):
    """A part is not installed; `cli.main` prints the install hint and exits with 2."""


def missing(extra: str) -> list[str]:
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require(extra: str) -> None:
    """Stop with `pip install 'radical.edge[<extra>]'` unless `extra`'s modules are there."""
    gone = missing(extra)
    if gone:
        raise MissingExtra(f"needs the '{extra}' extra (missing: {', '.join(gone)}): "
                           f"pip install 'radical.edge[{extra}]'")
