"""Constants both sides share (bridge, edges, plugins, SDK), in one stdlib-only module.

The SDK imports this too, so it must stay free of dependencies.
"""
from __future__ import annotations

__all__ = ["TIMEOUT_HEADER", "JOB_FINAL_STATES", "TASK_TERMINAL_STATES",
           "PLUGIN_ENTRY_POINTS", "TEST_PLUGIN_ENTRY_POINTS"]

#: request header a caller sets to ask for another call deadline (seconds)
TIMEOUT_HEADER = "X-Radical-Timeout"

#: psij job states after which a job never changes again
JOB_FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELED"})

#: rhapsody task states after which a task never changes again
TASK_TERMINAL_STATES = frozenset({"DONE", "FAILED", "CANCELED"})

#: entry-point group third-party plugins register in (`--plugins all` loads them)
PLUGIN_ENTRY_POINTS = "radical.edge.plugins"
#: entry-point group of test-fixture plugins: loaded only when named (or opted in)
TEST_PLUGIN_ENTRY_POINTS = "radical.edge.test_plugins"
