"""Client of the xgfabric plugin: workflow configs, start/stop, status.

Imports only the SDK, so it loads on a laptop without the edge side.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, List
from urllib.parse import quote

from radical.edge.sdk.plugin import PluginClient

__all__ = ["XGFabricClient", "TERMINAL"]

#: statuses after which a run changes no more
TERMINAL = frozenset({"completed", "failed"})
#: a stop waits for the run's clean-up (batch jobs canceled, child edges gone)
STOP_TIMEOUT = 300.0


def _q(value: Any) -> str:
    return quote(str(value), safe="")


class XGFabricClient(PluginClient):
    """Client-side interface for the XGFabric plugin."""

    def get_workdir(self) -> Dict:
        """Get current working directory (where configs are saved)."""
        return self._get(f"workdir/{self._require_sid()}")

    def set_workdir(self, path: str) -> Dict:
        """Set working directory (absolute; created when missing)."""
        return self._post(f"workdir/{self._require_sid()}", json={"path": path})

    def list_configs(self) -> List[Dict]:
        """List all saved configurations (and the built-ins)."""
        return self._get(f"configs/{self._require_sid()}")

    def load_config(self, name: str) -> Dict:
        """Load a configuration by name (``__default__``, ``default`` and ``test`` too)."""
        return self._get(f"config/{self._require_sid()}/{_q(name)}")

    def save_config(self, config: Dict) -> Dict:
        """Save a configuration (``kind``: ``workflow``, the default, or ``resource``)."""
        return self._post(f"config/{self._require_sid()}", json=config)

    def delete_config(self, name: str) -> Dict:
        """Delete a configuration."""
        return self._post(f"config/{self._require_sid()}/{_q(name)}/delete")

    def get_default_config(self) -> Dict:
        """Get default configuration template."""
        return self._get(f"config/{self._require_sid()}/default")

    def get_test_config(self) -> Dict:
        """Get test configuration template (stub tasks, no CSPOT required)."""
        return self._get(f"config/{self._require_sid()}/test")

    def get_status(self) -> Dict:
        """Get current workflow status (a WorkflowState)."""
        return self._get(f"status/{self._require_sid()}")

    def start_workflow(self, workflow: str = "__default__",
                       resource: str = "__default__") -> Dict:
        """Start workflow execution; 409 while one runs."""
        return self._post(f"start/{self._require_sid()}",
                          json={"workflow": workflow, "resource": resource})

    def stop_workflow(self) -> Dict:
        """Stop running workflow; answers once everything it started is released
        (``{"stopped", "cleanup": {tasks_canceled, jobs_canceled, edges_stopped}, "state"}``)."""
        return self._request("POST", f"stop/{self._require_sid()}", timeout=STOP_TIMEOUT)

    def wait_done(self, timeout: float = 600.0) -> Dict:
        """The state once the run is completed or failed (`workflow_status` notifications;
        the status is read again every few seconds in case the stream missed one)."""
        ready = threading.Event()

        def on_state(_edge: str, _plugin: str, _topic: str, data: Any) -> None:
            if isinstance(data, dict) and data.get("status") in TERMINAL:
                ready.set()

        self.register_notification_callback(on_state, topic="workflow_status")
        try:
            end = time.monotonic() + timeout
            while True:
                state = self.get_status()
                if state.get("status") in TERMINAL:
                    return state
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"workflow still {state.get('status')} "
                                       f"({state.get('phase')}) after {timeout:g} s")
                ready.wait(min(left, 5.0))
        finally:
            self.unregister_notification_callback(on_state, topic="workflow_status")
