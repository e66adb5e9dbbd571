"""Units of work on clusters: the part of a run that places tasks and survives lost clusters.

A *unit* is a list of rhapsody tasks that go to one cluster together (a simulation batch, a
training task).  `UnitRunner` (a mixin of `engine.Engine`) runs units one per free cluster
at a time; when a cluster is lost (its edge left, or stopped answering) the unit it was
running goes back to the queue for another cluster.  With no cluster left the run fails.
"""
from __future__ import annotations

import re
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any, Callable

from radical.edge.sdk.bridge import BridgeClient

from .clusters import Cluster, ClusterLost, Stopped, WorkflowError, is_lost_error
from .state import StateBox

__all__ = ["Unit", "UnitRunner", "render", "WAIT_SLICE"]
#: slice of a task wait between checks for stop and lost clusters (s)
WAIT_SLICE = 1.0
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(template: Any, values: dict[str, Any]) -> Any:
    """`template` with ``{name}`` placeholders filled; a string that is exactly one
    placeholder becomes the value itself (a list stays a list, an int an int)."""
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values
                                else m.group(0), template)
    return template


@dataclass
class Unit:
    """Tasks that go to one cluster together (a simulation batch, a training task)."""

    label: str
    templates: list[tuple[dict, dict]]  # (task template, its own placeholder values)
    on_done: Callable[[Cluster, list[Any]], None]


class UnitRunner:
    """Running units on the clusters of a run (`Engine` provides the attributes below)."""

    clusters: list[Cluster]
    box: StateBox
    bc: BridgeClient
    stop_event: threading.Event
    _lock: threading.Lock

    def _check(self) -> None:
        if self.stop_event.is_set():
            raise Stopped()

    # -- state ------------------------------------------------------------------------------
    def _publish_clusters(self, **changes: Any) -> None:
        for c in self.clusters:
            c.status.online = c.lost is None and c.exec_edge is not None
            c.status.error = c.lost
        self.box.update(
            immediate_clusters=[asdict(c.status) for c in self.clusters if c.kind == "immediate"],
            allocate_clusters=[asdict(c.status) for c in self.clusters if c.kind != "immediate"],
            pilot_jobs={c.name: c.status.pilot_job_id for c in self.clusters
                        if c.status.pilot_job_id}, **changes)

    def _alive(self) -> list[Cluster]:
        return [c for c in self.clusters if c.lost is None and c.exec_edge]

    def _lose(self, c: Cluster, why: str) -> None:
        """Mark `c` lost (once: the first reason stays) and say so."""
        if c.lost:
            return
        c.lost = why
        left = [x.name for x in self._alive()]
        self.box.log(f"cluster {c.name} lost: {c.lost}; continuing on "
                     f"{', '.join(left) if left else 'no cluster'}", "warning", publish=False)
        self._publish_clusters()

    def _need_alive(self, what: str) -> list[Cluster]:
        alive = self._alive()
        if not alive:
            reasons = "; ".join(f"{c.name}: {c.lost}" for c in self.clusters) or "none configured"
            raise WorkflowError(f"no cluster left to {what} ({reasons})")
        return alive

    # -- units of work ----------------------------------------------------------------------
    def _run_units(self, units: list[Unit], what: str, gpu_first: bool = False) -> None:
        """Run every unit, one per free cluster at a time; a lost cluster's unit is requeued.
        With `gpu_first`, clusters configured with ``"gpu": true`` get units first."""
        pending = deque(units)
        running: dict[Future, tuple[Cluster, Unit]] = {}
        with ThreadPoolExecutor(max(1, len(self.clusters))) as pool:
            try:
                while pending or running:
                    self._check()
                    busy = {c.name for c, _u in running.values()}
                    free = self._alive()
                    if gpu_first:
                        free.sort(key=lambda x: not x.status.has_gpu)
                    for c in free:
                        if pending and c.name not in busy:
                            unit = pending.popleft()
                            running[pool.submit(self._run_unit, c, unit)] = (c, unit)
                            busy.add(c.name)
                    if not running:
                        self._need_alive(f"{what} ({len(pending)} left)")
                    done, _ = wait(list(running), timeout=WAIT_SLICE, return_when=FIRST_COMPLETED)
                    for fut in done:
                        c, unit = running.pop(fut)
                        try:
                            results = fut.result()
                        except ClusterLost as exc:
                            self._lose(c, str(exc))
                            self.box.log(f"{unit.label} moves from {c.name} to another cluster",
                                         "warning", publish=False)
                            pending.appendleft(unit)
                            continue
                        c.status.tasks_done += len(results)
                        unit.on_done(c, results)
            except BaseException:
                self.stop_event.set()  # let the other units' threads end too
                raise

    def _run_unit(self, c: Cluster, unit: Unit) -> list[Any]:
        values = {"input": c.input_file, "workspace": c.workspace, "cluster": c.name}
        tasks = [render(t, {**values, **own}) for t, own in unit.templates]
        rh = c.client(self.bc, "rhapsody", backends=["concurrent"])
        try:
            acks = rh.submit_tasks(tasks)
        except Exception as exc:
            if is_lost_error(exc):
                raise ClusterLost(f"submit to {c.exec_edge} failed: {exc}") from exc
            raise WorkflowError(f"{unit.label} refused by cluster {c.name}: {exc}") from exc
        uids = [a["uid"] for a in acks]
        with self._lock:
            c.status.tasks_running += len(uids)
        self.box.log(f"{unit.label}: {len(uids)} task(s) on {c.name} ({c.exec_edge})",
                     active_cluster=c.name, publish=False)
        self._publish_clusters()
        try:
            out = self._wait(c, rh, uids)
        finally:
            with self._lock:
                c.status.tasks_running -= len(uids)
        bad = [t for t in out if t.get("state") != "DONE"]
        if bad and self.stop_event.is_set():
            raise Stopped()
        if any(t.get("state") == "CANCELED" for t in bad):
            raise ClusterLost(f"tasks canceled on {c.exec_edge}")
        if bad:
            t = bad[0]
            why = t.get("exception") or t.get("error") or (t.get("stderr") or "").strip()[-500:]
            raise WorkflowError(f"{unit.label} failed on cluster {c.name}: task {t.get('uid')} "
                                f"{t.get('state')}: {why}")
        return [t.get("return_value") if "function" in task else t.get("stdout")
                for t, task in zip(out, tasks)]

    def _wait(self, c: Cluster, rh: Any, uids: list[str]) -> list[dict]:
        while True:
            if self.stop_event.is_set():
                raise Stopped()
            if c.lost:
                raise ClusterLost(c.lost)
            try:
                return rh.wait_tasks(uids, timeout=WAIT_SLICE)
            except TimeoutError:
                continue
            except Exception as exc:
                if is_lost_error(exc):
                    raise ClusterLost(f"{c.exec_edge} stopped answering: {exc}") from exc
                raise

