"""Client of the sysinfo plugin: host metrics, home directory and host role.

Lives next to the plugin but imports only the SDK, so it loads without psutil or the edge.
"""
from __future__ import annotations

from typing import Any

from radical.edge.sdk.plugin import PluginClient

__all__ = ["SysInfoClient"]


class SysInfoClient(PluginClient):
    """Client-side interface of the sysinfo plugin."""

    def get_metrics(self) -> dict[str, Any]:
        """Current metrics: ``system, cpu, memory, disks, network, gpus`` (needs a session)."""
        return self._get(f"metrics/{self._require_sid()}")

    def homedir(self) -> str:
        """Home directory of the edge process (no session needed)."""
        answer = self._get("homedir")
        return answer["homedir"] if isinstance(answer, dict) else answer

    def host_role(self) -> dict[str, Any]:
        """``{"role": "login"|"compute"|"bridge", "scheduler", "job_id"}`` (no session needed)."""
        return self._get("host_role")
