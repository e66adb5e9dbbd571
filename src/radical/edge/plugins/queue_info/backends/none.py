"""No batch system: empty answers, so a portal on a laptop shows "nothing here"."""
from __future__ import annotations

from .base import QueueInfo, UnknownJob


class QueueInfoNone(QueueInfo):
    backend_name = "none"

    def _collect_queues(self, user: str) -> dict[str, dict]:
        return {}

    def _collect_jobs(self, user: str) -> list[dict]:
        return []

    def _collect_allocations(self, user: str) -> list[dict]:
        return []

    def _cancel(self, job_id: str) -> dict:
        raise UnknownJob(f"unknown job id '{job_id}': this host has no batch system")
