"""The null scheduler: a laptop or a cloud VM. Always available, never in an allocation."""
from __future__ import annotations

from typing import Mapping

from .base import BatchSystem
from .registry import register


@register
class NoBatchSystem(BatchSystem):
    name = "none"
    psij_executor = "local"
    priority = 1000

    @classmethod
    def available(cls, env: Mapping[str, str] | None = None) -> bool:
        return True

    def in_allocation(self) -> bool:
        return False

    def job_id(self) -> str | None:
        return None

    def allocation(self) -> dict | None:
        return None
