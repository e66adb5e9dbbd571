"""One workflow run: classify clusters, allocate, stage, simulate, train, evaluate, gather.

The engine runs in its own thread on the xgfabric edge and drives the other edges through the
bridge with the SDK (queue_info, psij, staging, rhapsody clients), so it blocks freely and
never touches the edge's event loop.  Every change of the run is published as the whole
`WorkflowState` (``workflow_status``).  Whatever it started — rhapsody tasks, batch jobs,
child edges — is released when the run ends, however it ends.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from radical.edge.sdk.bridge import BridgeClient

from .clusters import (Cluster, ClusterLost, Stopped, WorkflowError, allocate, classify,
                       is_lost_error, pick_clusters, release)
from .config import ResourceConfig, WorkflowConfig
from .state import StateBox, now_iso
from .units import Unit, UnitRunner

log = logging.getLogger(__name__)

__all__ = ["Engine"]


class Engine(UnitRunner):
    """A workflow run in its own thread; `stop()` ends it and reports what it released."""

    def __init__(self, wf: WorkflowConfig, res: ResourceConfig, bc: BridgeClient,
                 self_edge: str, box: StateBox, alloc_timeout: float,
                 release_timeout: float) -> None:
        self.wf, self.res, self.bc, self.self_edge, self.box = wf, res, bc, self_edge, box
        self.alloc_timeout, self.release_timeout = alloc_timeout, release_timeout
        self.run_id = uuid.uuid4().hex[:6]
        self.stop_event = threading.Event()
        self.clusters: list[Cluster] = []
        self.sims: dict[int, dict] = {}
        self.models: dict[str, dict] = {}
        self.evaluation: Any = None
        self.report: dict | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._main, name=f"xgfabric-{self.run_id}",
                                       daemon=True)

    # -- control ----------------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float) -> dict | None:
        """Ask the run to stop, wait for its clean-up (blocking), return the report."""
        self.stop_event.set()
        self.thread.join(timeout)
        return self.report

    def topology_changed(self, edges: dict) -> None:
        """An edge left: clusters running on it are lost (their work moves elsewhere)."""
        for c in self.clusters:
            if c.exec_edge and c.exec_edge not in edges and not c.lost:
                self._lose(c, f"edge '{c.exec_edge}' left the bridge")

    def _edges(self) -> dict:
        return self.bc.topology().get("edges") or {}

    # -- the run ----------------------------------------------------------------------------
    def _main(self) -> None:
        outcome: dict[str, Any]
        try:
            self._run()
            outcome = {"status": "completed", "phase": "done", "progress": 100, "error": None}
        except Stopped:
            outcome = {"status": "failed", "phase": "stopped",
                       "error": "stopped by stop_workflow"}
        except WorkflowError as exc:
            outcome = {"status": "failed", "phase": self.box.get("phase"), "error": str(exc)}
        except Exception as exc:  # a bug must still end the run and release its clusters
            log.exception("xgfabric run %s failed", self.run_id)
            outcome = {"status": "failed", "phase": self.box.get("phase"),
                       "error": f"internal error: {type(exc).__name__}: {exc}"}
        self.box.log("releasing tasks, batch jobs and child edges")
        try:
            self.report = self._teardown()
        except Exception as exc:
            log.exception("xgfabric run %s: clean-up failed", self.run_id)
            self.report = {"error": f"clean-up failed: {exc}"}
        finally:
            self.bc.close()
        done = outcome["status"] == "completed"
        text = ("workflow completed" if done else f"workflow {outcome['phase']}: "
                f"{outcome['error']}")
        for c in self.clusters:
            c.status.tasks_running = 0
        self.box.log(text, "info" if done else "error", publish=False)
        self._publish_clusters(end_time=now_iso(), cleanup=self.report, **outcome)

    def _run(self) -> None:
        self.box.log(f"run {self.run_id}: workflow '{self.wf.name}' on resource "
                     f"'{self.res.name}' via {self.bc.url}", phase="classifying", progress=1,
                     run_id=self.run_id)
        self._classify()
        sensor = self._sensor_data()
        self._allocate()
        self._stage(sensor)
        self._simulate()
        self._train()
        self._evaluate()
        self._gather()

    def _classify(self) -> None:
        edges = self._edges()
        self.clusters = pick_clusters(self.res, edges, self.self_edge)
        for c in self.clusters:
            self._check()
            try:
                kind = classify(self.bc, c, edges)
                self.box.log(f"cluster {c.name} (edge {c.edge}): {kind}", publish=False)
            except Stopped:
                raise
            except Exception as exc:  # ClusterLost, or queue_info failing on that edge
                c.lost = str(exc) if isinstance(exc, ClusterLost) else \
                    f"classification failed: {exc}"
                self.box.log(f"cluster {c.name} unavailable: {c.lost}", "warning",
                             publish=False)
        self._need_alive_or_allocatable()
        self._publish_clusters(progress=3)

    def _need_alive_or_allocatable(self) -> None:
        if not [c for c in self.clusters if c.lost is None]:
            self._need_alive("run on")

    def _sensor_data(self) -> Path:
        self._check()
        run_dir = Path(self.wf.local_workspace) / self.run_id
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkflowError(f"cannot use local_workspace {self.wf.local_workspace} on "
                                f"this edge: {exc}") from None
        path = run_dir / "sensor.json"
        if not self.wf.mock_sensor_data:
            raise WorkflowError(f"reading sensor data from CSPOT ({self.wf.cspot_woof_url}) is "
                                "not available on this edge; set mock_sensor_data to true "
                                "(or use the 'test' workflow)")
        rng = random.Random(self.run_id)
        readings = [{"t": i, "temperature": round(15 + 10 * rng.random(), 3),
                     "wind_speed": round(1 + 6 * rng.random(), 3),
                     "wind_dir": round(360 * rng.random(), 1)}
                    for i in range(self.wf.cspot_limit)]
        path.write_text(json.dumps({"source": "mock", "readings": readings}))
        self.box.log(f"mock sensor data: {len(readings)} readings in {path}", phase="sensor_data",
                     progress=5)
        return path

    def _allocate(self) -> None:
        wanted = [c for c in self.clusters if c.lost is None and c.kind == "allocate"]
        if not wanted:
            return
        self.box.log(f"allocating {len(wanted)} cluster(s): "
                     f"{', '.join(c.name for c in wanted)}", phase="allocating", progress=8)

        def one(c: Cluster) -> None:
            try:
                allocate(self.bc, c, self.run_id, self.alloc_timeout, self._edges, self._check,
                         self._publish_clusters)
                self.box.log(f"cluster {c.name}: child edge {c.exec_edge} joined (batch job "
                             f"{c.status.pilot_job_id})", publish=False)
            except ClusterLost as exc:
                c.lost = str(exc)
                self.box.log(f"cluster {c.name} allocation failed: {exc}", "warning",
                             publish=False)
            except Stopped:
                raise
            except Exception as exc:
                if not is_lost_error(exc):
                    raise WorkflowError(f"allocation on cluster {c.name} refused: {exc}") \
                        from exc
                c.lost = f"allocation failed: {exc}"
            self._publish_clusters()

        self._all_at_once(one, wanted)
        self._need_alive("run on")

    def _stage(self, sensor: Path) -> None:
        self.box.log("staging inputs", phase="staging", progress=12)

        def one(c: Cluster) -> None:
            self._check()
            try:
                c.workspace = c.cfg.get("workspace") or \
                    f"{self.wf.local_workspace}/{self.run_id}/{c.name}"
                st = c.client(self.bc, "staging")
                st.mkdir(c.workspace, parents=True, exist_ok=True)
                c.input_file = f"{c.workspace}/sensor.json"
                st.put(str(sensor), c.input_file, overwrite=True)
                c.client(self.bc, "rhapsody", backends=["concurrent"])
                self.box.log(f"cluster {c.name}: inputs staged to {c.exec_edge}:{c.input_file}",
                             publish=False)
            except Stopped:
                raise
            except Exception as exc:
                if not is_lost_error(exc):
                    raise WorkflowError(f"staging to cluster {c.name} failed: {exc}") from exc
                self._lose(c, f"staging failed: {exc}")

        self._all_at_once(one, self._alive())
        self._need_alive("run on")
        self._publish_clusters(progress=15)

    def _all_at_once(self, func: Callable[[Cluster], None], clusters: list[Cluster]) -> None:
        """`func(c)` for every cluster in parallel; the first error stops the others too."""
        with ThreadPoolExecutor(max(1, len(clusters))) as pool:
            futures = [pool.submit(func, c) for c in clusters]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f.exception() for f in done if f.exception()), None)
            if failed is not None:
                self.stop_event.set()  # the others may wait on allocations: end them now
                raise failed

    # -- phases of tasks --------------------------------------------------------------------
    def _simulate(self) -> None:
        n, size = self.wf.num_simulations, self.wf.batch_size
        batches = [list(range(i, min(n, i + size))) for i in range(0, n, size)]
        self.box.log(f"{n} simulation(s) in {len(batches)} batch(es) on "
                     f"{len(self._alive())} cluster(s)", phase="simulation", progress=20,
                     total_simulations=n, total_batches=len(batches), current_batch=0)
        template = self.wf.simulation_task or {}

        def unit(b: int, sims: list[int]) -> Unit:
            def done(c: Cluster, results: list[Any]) -> None:
                for sim, result in zip(sims, results):
                    self.sims[sim] = {"sim_id": sim, "cluster": c.name, "edge": c.exec_edge,
                                      "result": result}
                finished = self.box.get("current_batch") + 1
                self.box.log(f"batch {b + 1}/{len(batches)} done on {c.name}", publish=False)
                self._publish_clusters(
                    current_batch=finished, completed_simulations=len(self.sims),
                    progress=20 + int(60 * len(self.sims) / n))
            return Unit(f"simulation batch {b + 1}", [(template, {"sim_id": s, "batch": b})
                                                       for s in sims], done)

        self._run_units([unit(b, sims) for b, sims in enumerate(batches)], "simulate")

    def _train(self) -> None:
        models = self.wf.train_models
        if not models:
            return
        results = [s["result"] for _k, s in sorted(self.sims.items())]
        self.box.log(f"training {len(models)} model(s): {', '.join(models)}", phase="training",
                     progress=80, total_training=len(models))

        def unit(model: str) -> Unit:
            def done(c: Cluster, out: list[Any]) -> None:
                self.models[model] = {"model": model, "cluster": c.name, "result": out[0]}
                self.box.log(f"model {model} trained on {c.name}", publish=False)
                self._publish_clusters(completed_training=len(self.models),
                                       progress=80 + int(12 * len(self.models) / len(models)))
            return Unit(f"training {model}", [(self.wf.training_tasks[model],
                                               {"model": model, "results": results})], done)

        self._run_units([unit(m) for m in models], "train", gpu_first=True)

    def _evaluate(self) -> None:
        if self.wf.evaluation_task is None:
            return
        trained = [m["result"] for _k, m in sorted(self.models.items())]
        self.box.log("evaluating the models", phase="evaluation", progress=93)

        def done(c: Cluster, out: list[Any]) -> None:
            self.evaluation = {"cluster": c.name, "result": out[0]}

        self._run_units([Unit("evaluation", [(self.wf.evaluation_task,
                                              {"models": trained})], done)], "evaluate")

    def _gather(self) -> None:
        self._check()
        path = Path(self.wf.local_workspace) / self.run_id / "results.json"
        missing = [s for s in range(self.wf.num_simulations) if s not in self.sims]
        if missing:
            raise WorkflowError(f"simulations {missing} have no result")
        path.write_text(json.dumps({
            "run_id": self.run_id, "workflow": self.wf.name, "resource": self.res.name,
            "simulations": [self.sims[s] for s in sorted(self.sims)],
            "training": [self.models[m] for m in sorted(self.models)],
            "evaluation": self.evaluation,
            "clusters": {c.name: {"edge": c.edge, "exec_edge": c.exec_edge, "type": c.kind,
                                  "tasks_done": c.status.tasks_done, "lost": c.lost}
                         for c in self.clusters},
        }, indent=1, default=str))
        self.box.log(f"results of {len(self.sims)} simulation(s) and {len(self.models)} "
                     f"model(s) gathered in {path}", phase="gathering", progress=99,
                     results_file=str(path))

    # -- clean-up ---------------------------------------------------------------------------
    def _teardown(self) -> dict:
        """Release every cluster at once; what was canceled, per cluster and in total."""
        if not self.clusters:
            return {"tasks_canceled": 0, "jobs_canceled": [], "edges_stopped": []}
        with ThreadPoolExecutor(len(self.clusters)) as pool:
            done = list(pool.map(lambda c: self._release(c), self.clusters))
        return {"tasks_canceled": sum(d.get("tasks_canceled", 0) for d in done),
                "jobs_canceled": [d["job_canceled"] for d in done if d.get("job_canceled")],
                "edges_stopped": [d["edge"] for d in done if d.get("edge_gone")],
                "clusters": done}

    def _release(self, c: Cluster) -> dict:
        last: dict = {}

        def edges() -> dict:  # the bridge unreachable: assume nothing changed
            nonlocal last
            try:
                last = self._edges()
            except Exception as exc:
                log.debug("topology unavailable: %s", exc)
            return last
        try:
            return release(self.bc, c, edges, self.release_timeout)
        except Exception as exc:
            log.exception("releasing cluster %s", c.name)
            return {"cluster": c.name, "error": str(exc)}
