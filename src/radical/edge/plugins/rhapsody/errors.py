"""`TaskSpecError`: what every refusal of a task spec raises (validation, imports, pickles)."""
from __future__ import annotations

from ...errors import StatusError

__all__ = ["TaskSpecError"]


class TaskSpecError(StatusError, ValueError):
    """A task spec the edge refuses; `status` is the HTTP status to answer with."""

    def __init__(self, detail: str, status: int = 422) -> None:
        super().__init__(detail, status)
