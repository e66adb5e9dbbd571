"""`/bridge/<plugin>/...`: calls to plugins the bridge hosts itself (see
`workers.local_host`), answered on the bridge's loop with the proxy's framing and errors."""
from __future__ import annotations

import logging
import time
from typing import Any

from ..app.protocol import FORWARDED_HEADERS, CallRequest
from .dispatcher import BridgeError
from .envelope import error_bytes
from .bodies import receive_body
from .proxy import HOP_HEADERS, TIMEOUT_HEADER, call_timeout, check_path, wire_identity
from .state import BridgeState

log = logging.getLogger(__name__)

PREFIX = "/bridge/"


def hosted_plugin(state: BridgeState | None, path: str) -> str | None:
    """The bridge-hosted plugin `path` addresses (`/bridge/<plugin>/...`), else None."""
    if state is None or state.local is None or not path.startswith(PREFIX):
        return None
    plugin, sep, _rest = path[len(PREFIX):].partition("/")
    return plugin if sep and plugin in state.local.plugins else None


async def serve(state: BridgeState, scope: dict, receive: Any, send: Any) -> None:
    path: str = scope["path"]
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    assert state.local is not None
    try:
        refused = check_path(scope.get("raw_path") or path.encode(), path)
        if refused:
            raise BridgeError(400, refused)
        timeout = call_timeout(headers.get(TIMEOUT_HEADER), state)
        # handled in this process: the whole body inline (no Redis hop), up to the body limit
        inline = state.settings.model_copy(
            update={"payload_inline_bytes": state.settings.max_body_bytes})
        body = (await receive_body(state.redis, inline, headers, receive, timeout)).data
        call = CallRequest.new(
            reply_to="", timeout=timeout, method=scope["method"], path=path[len("/bridge"):],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=[[k, v] for k, v in headers.items() if k in FORWARDED_HEADERS],
            body=body, identity=wire_identity(scope.get("identity")))
        call.received = time.time()
        reply = await state.local.call(call)
        status, body_out = reply.status, reply.body_bytes()
        out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers
               if k.lower() not in HOP_HEADERS]
    except BridgeError as exc:
        status, body_out = exc.status, error_bytes(exc.status, exc.detail)
        out = [(b"content-type", b"application/json")]
    except Exception as exc:
        log.exception("bridge plugin call failed for %s %s", scope.get("method"), path)
        status, body_out = 500, error_bytes(500, f"bridge error: {type(exc).__name__}")
        out = [(b"content-type", b"application/json")]
    out.append((b"content-length", str(len(body_out)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body_out})
