"""The JSON body of every error the bridge makes itself.

The original bridge answered `{"error": true, "status_code": N, "detail": "..."}`; clients
and scripts read `detail` (and some `status_code`), so every bridge-made error keeps all
three. Answers produced by plugins are relayed untouched.
"""
from __future__ import annotations

from typing import Any

import orjson


def error_body(status: int, detail: Any) -> dict[str, Any]:
    """The error object for `status` with a human-readable `detail`."""
    return {"error": True, "status_code": status, "detail": detail}


def error_bytes(status: int, detail: Any) -> bytes:
    """`error_body` encoded, for raw ASGI answers."""
    return orjson.dumps(error_body(status, detail))
