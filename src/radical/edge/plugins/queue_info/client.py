"""Client of the queue_info plugin: partitions, jobs, allocations, cancel.

Imports only the SDK, so it loads on a laptop without the edge's dependencies.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from radical.edge.sdk.plugin import PluginClient

__all__ = ["QueueInfoClient"]


class QueueInfoClient(PluginClient):
    """Client-side interface of the queue_info plugin.

    `user=None` means the user the edge runs as, `user='*'` everyone (admin view);
    `force=True` bypasses the edge's cache.
    """

    def get_info(self, user: str | None = None, force: bool = False) -> dict[str, Any]:
        """``{"queues": {name: {...}}}`` visible to `user`."""
        return self._get(f"get_info/{self._require_sid()}", user=user, force=force)

    def list_jobs(self, queue: str, user: str | None = None,
                  force: bool = False) -> dict[str, Any]:
        """``{"jobs": [...]}`` of `user` in `queue` (404 for an unknown queue)."""
        return self._get(f"list_jobs/{self._require_sid()}/{quote(str(queue), safe='')}",
                         user=user, force=force)

    def list_all_jobs(self, user: str | None = None, force: bool = False) -> dict[str, Any]:
        """``{"jobs": [...]}`` of `user` in every queue."""
        return self._get(f"list_all_jobs/{self._require_sid()}", user=user, force=force)

    def list_allocations(self, user: str | None = None,
                         force: bool = False) -> dict[str, Any]:
        """``{"allocations": [...]}``: accounts/associations (SLURM) or queue limits (PBS)."""
        return self._get(f"list_allocations/{self._require_sid()}", user=user, force=force)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a batch job (404 unknown id, 403 not yours, 409 already ended)."""
        return self._post(f"cancel/{self._require_sid()}/{quote(str(job_id), safe='')}")

    def job_allocation(self) -> dict[str, Any] | None:
        """The batch job the edge runs in (job_id, partition, n_nodes, nodelist,
        cpus_per_node, gpus_per_node, account, job_name, runtime), None on a login node.
        No session needed."""
        answer = self._get("job_allocation")
        return answer.get("allocation") if isinstance(answer, dict) else answer

    def backend(self) -> str:
        """The edge's batch backend: 'slurm', 'pbs' or 'none'. No session needed."""
        answer = self._get("backend")
        return answer.get("backend") if isinstance(answer, dict) else answer
