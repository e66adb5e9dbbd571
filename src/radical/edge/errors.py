"""`StatusError`: the one base of every error that knows the HTTP status it answers with.

The bridge (`BridgeError`), plugin sessions (`SessionError`), plugins (`JobSpecError`,
`TaskSpecError`, `QueueInfoError`), child-edge launches (`LaunchError`) and the edge's router
(`RouteNotFound`) all derive from it, so one `except StatusError` turns any of them into a
`{status, detail}` answer. Stdlib only: every layer may import it. (The SDK has its own
single base, `sdk.errors.EdgeError`, for what comes back over HTTP.)
"""
from __future__ import annotations

import re

__all__ = ["StatusError", "plain_message"]

#: `PosixPath('/x')` and friends, as Python's reprs put them into exception texts
_PATH_REPR = re.compile(r"\b(?:Pure)?(?:Posix|Windows)?Path\((['\"])(.*?)\1\)")


class StatusError(Exception):
    """An error answered as HTTP `status` with the human-readable `detail`."""

    #: default status of the class; an instance may carry another one
    status: int = 500

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status


def plain_message(exc: BaseException | str) -> str:
    """An exception's text for people: OS errors as "strerror: path", path objects as their
    plain path (an `OSError` on a `Path` says `PosixPath('/x')`), never a class repr."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": '{exc.filename}'" if exc.filename is not None else ""
        text = f"{exc.strerror}{where}"
    else:
        text = str(exc)
    return _PATH_REPR.sub(lambda m: f"'{m.group(2)}'", text)
