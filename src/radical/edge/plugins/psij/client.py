"""Client of the psij plugin: batch jobs and child edges on an edge's scheduler.

Imports only the SDK, so it loads on a laptop without psij-python or the edge side.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Callable
from urllib.parse import quote

from radical.edge.constants import JOB_FINAL_STATES
from radical.edge.sdk.errors import CallOutcomeError, EdgeConnectionError
from radical.edge.sdk.plugin import PluginClient

__all__ = ["FINAL_STATES", "PSIJClient", "PsijClient"]

FINAL_STATES = JOB_FINAL_STATES

log = logging.getLogger("radical.edge.sdk.psij")


def _q(value: Any) -> str:
    return quote(str(value), safe="")


class PsijClient(PluginClient):
    """Client-side interface of the psij plugin.

    A `job_spec` is a dict: ``executable`` (required), ``arguments`` (list of strings),
    ``directory``, ``environment`` ({name: value}), ``inherit_environment``, ``name``,
    ``stdout_path``/``stderr_path`` (default: files of the session, removed with it),
    ``resources`` ({node_count, process_count, processes_per_node, cpu_cores_per_process,
    gpu_cores_per_process, exclusive_node_use}) and ``attributes``: ``duration`` (seconds or
    ``"[D-]HH:MM:SS"``), ``queue_name``, ``account``, ``reservation_id``, ``node_count``,
    ``custom_attributes`` ({"slurm.constraint": "V100"}; dotted keys may also sit directly in
    ``attributes``). Executors: ``local``, ``slurm``, ``pbs``, ``lsf``.
    """

    def submit_job(self, job_spec: dict[str, Any], executor: str = "local", *,
                   idempotency_key: str | None = None, retries: int = 2) -> dict[str, Any]:
        """Submit a job; returns ``{"job_id", "native_id", "state", "executor"}``.

        The submit carries an ``Idempotency-Key`` (`idempotency_key`, or a fresh one), so it
        is retried (up to `retries` times) when the connection fails or the bridge cannot
        tell whether it ran: the bridge answers a retry with the first attempt's reply and
        the job is never submitted twice. Pass your own key to retry across processes.
        """
        key = idempotency_key or uuid.uuid4().hex
        path = f"submit/{self._require_sid()}"
        for attempt in range(retries + 1):
            try:
                return self._post(path, json={"job_spec": job_spec, "executor": executor},
                                  headers={"Idempotency-Key": key})
            except (CallOutcomeError, EdgeConnectionError):
                if attempt == retries:
                    raise
                time.sleep(min(2.0, 0.2 * 2 ** attempt))
        raise AssertionError("unreachable")

    def get_job_status(self, job_id: str, stdout_offset: int = 0,
                       stderr_offset: int = 0) -> dict[str, Any]:
        """State, exit code and output from the given byte offsets.

        The answer's ``stdout_offset``/``stderr_offset`` are where the next call continues
        (pass them back to receive only new output).
        """
        return self._get(f"status/{self._require_sid()}/{_q(job_id)}",
                         stdout_offset=stdout_offset, stderr_offset=stderr_offset)

    def get_launch_log(self, job_id: str) -> dict[str, Any]:
        """Why a child edge started with `submit_tunneled` did not join.

        ``{"job_id", "native_id", "edge_name", "state", "exit_code", "message", "stderr",
        "log_path", "log", "log_note"}``: the tail of the job's stderr and of the edge's own
        log (``log`` is None where that file is not visible from the parent edge, and
        ``log_note`` says why). 404 for an unknown session or job, or a job that launched no
        edge.
        """
        return self._get(f"launch_log/{self._require_sid()}/{_q(job_id)}")

    def list_jobs(self) -> dict[str, Any]:
        """``{"jobs": [...]}``: every job of this session with its state."""
        return self._get(f"list_jobs/{self._require_sid()}")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a job (404 unknown id, 409 already ended)."""
        return self._post(f"cancel/{self._require_sid()}/{_q(job_id)}")

    def submit_tunneled(self, job_spec: dict[str, Any], executor: str = "local",
                        tunnel: bool = False) -> dict[str, Any]:
        """Start a child edge in a batch job; returns ``job_id, native_id, edge_name``.

        ``job_spec["arguments"]`` must contain ``-n <edge_name>`` (or ``--name``); the
        executable defaults to the edge's ``radical-edge-wrapper.sh``. With ``tunnel=True``
        the parent edge opens a reverse SSH tunnel to the job's node once it runs, and the
        child reaches Redis through it (see `tunnel_status`).
        """
        return self._post(f"submit_tunneled/{self._require_sid()}",
                          json={"job_spec": job_spec, "executor": executor, "tunnel": tunnel})

    def tunnel_status(self, edge_name: str) -> dict[str, Any]:
        """``{"edge_name", "status", "port", "pid", ...}``; status is ``pending``, ``active``,
        ``failed``, ``done`` or ``no_tunnel``. No session needed."""
        return self._get(f"tunnel_status/{_q(edge_name)}")

    def executors(self) -> dict[str, Any]:
        """``{"executors": [...], "default": ...}`` available on the edge. No session needed."""
        return self._get("executors")

    def _on_gap(self, gap: dict) -> None:
        """`job_status` notifications were lost: re-poll the session's jobs (own thread)."""
        if self._sid and any(t in (None, "job_status") for _, t in self._callbacks):
            threading.Thread(target=self._resync_jobs, name="psij-resync", daemon=True).start()

    def _resync_jobs(self) -> None:
        """Hand every job's current state to the `job_status` callbacks, marked `resync`."""
        try:
            jobs = self.list_jobs().get("jobs") or []
        except Exception as exc:
            log.warning("%r: could not re-poll jobs after an event gap: %s", self, exc)
            return
        for job in jobs:
            note = {**job, "sid": self._sid, "resync": True}
            for callback, topic in list(self._callbacks):
                if topic in (None, "job_status"):
                    try:
                        callback(self._edge_id, self._plugin_name, "job_status", note)
                    except Exception:
                        log.exception("job_status callback %r failed", callback)

    def wait_job(self, job_id: str, timeout: float | None = None, interval: float = 1.0,
                 on_output: Callable[[str, str], None] | None = None) -> dict[str, Any]:
        """Poll until the job ends; the last status with the *whole* stdout/stderr.

        `on_output(stdout_chunk, stderr_chunk)` sees output as it arrives. Raises
        `TimeoutError` after `timeout` seconds (None: wait forever).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        out: list[str] = []
        err: list[str] = []
        offsets = (0, 0)
        while True:
            status = self.get_job_status(job_id, *offsets)
            if status.get("stdout") or status.get("stderr"):
                out.append(status.get("stdout") or "")
                err.append(status.get("stderr") or "")
                if on_output is not None:
                    on_output(status.get("stdout") or "", status.get("stderr") or "")
            new = (status.get("stdout_offset", offsets[0]), status.get("stderr_offset",
                                                                       offsets[1]))
            if status.get("state") in FINAL_STATES and new == offsets:
                status["stdout"], status["stderr"] = "".join(out), "".join(err)
                return status
            if new != offsets:
                offsets = new
                continue  # drain what is there before sleeping
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {status.get('state')} after "
                                   f"{timeout:g} s")
            time.sleep(interval)


#: the original client's spelling
PSIJClient = PsijClient
