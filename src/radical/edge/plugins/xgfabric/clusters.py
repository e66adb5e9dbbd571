"""The clusters a workflow runs on, reached through the bridge with the SDK's plugin clients.

A cluster is an edge (named in the resource config, or any connected edge).  It is
*immediate* when tasks can run on it now (no batch system, or the edge already sits inside a
batch allocation) and *allocate* when it is a login node of a batch system: then a child edge
is submitted as a batch job through the edge's psij plugin, and the tasks run on that child.
Everything here blocks (HTTP calls): the engine calls it from its own thread.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from radical.edge.sdk.bridge import BridgeClient
from radical.edge.sdk.errors import EdgeError

from .state import ClusterStatus

log = logging.getLogger(__name__)

__all__ = ["Cluster", "ClusterLost", "WorkflowError", "Stopped", "pick_clusters", "classify",
           "allocate", "CHILD_PLUGINS", "is_lost_error"]

#: plugins a child edge in a batch job runs
CHILD_PLUGINS = "rhapsody,staging,queue_info,sysinfo"
#: psij executor per queue_info backend
EXECUTORS = {"slurm": "slurm", "pbs": "pbs", "lsf": "lsf"}
#: names of child edges runs start (never picked as clusters of another run)
CHILD_RE = re.compile(r"\.xgf-[0-9a-f]+$")
#: psij job states after which no child edge will come
JOB_FINAL = ("COMPLETED", "FAILED", "CANCELED")


class WorkflowError(Exception):
    """The workflow cannot go on; the message says why (it becomes the state's error)."""


class Stopped(Exception):
    """`stop_workflow` was called."""


class ClusterLost(Exception):
    """A cluster's edge left (or stopped answering); its work moves elsewhere."""


def is_lost_error(exc: BaseException) -> bool:
    """An SDK error meaning "that edge is gone" rather than "that request was bad"."""
    if isinstance(exc, EdgeError):
        return exc.status in (None, 404, 410, 502, 503, 504)
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


@dataclass
class Cluster:
    """One cluster of a run: where it is, how it is reached and what it holds."""

    name: str
    edge: str
    cfg: dict
    status: ClusterStatus
    exec_edge: str | None = None
    clients: dict[str, Any] = field(default_factory=dict)  # "edge/plugin" -> its client
    job_id: str | None = None
    workspace: str = ""
    input_file: str = ""
    lost: str | None = None

    @property
    def kind(self) -> str:
        return self.status.cluster_type

    def client(self, bc: BridgeClient, plugin: str, edge: str | None = None,
               **kwargs: Any) -> Any:
        """The (cached) client of `plugin` on `edge` (default: where tasks run)."""
        edge = edge or self.exec_edge or self.edge
        key = f"{edge}/{plugin}"
        if key not in self.clients:
            self.clients[key] = bc.get_edge_client(edge).get_plugin(plugin, **kwargs)
        return self.clients[key]

    def close_clients(self) -> None:
        for key, client in list(self.clients.items()):
            try:
                client.close()
            except Exception as exc:  # the edge may be gone already
                log.debug("closing %s of cluster %s: %s", key, self.name, exc)
            self.clients.pop(key, None)


def pick_clusters(resource: Any, edges: dict, self_edge: str) -> list[Cluster]:
    """The clusters of `resource` (every capable connected edge when it names none)."""
    out: list[Cluster] = []
    configs: dict = resource.cluster_configs
    if not configs:
        for name, info in sorted(edges.items()):
            plugins = set((info or {}).get("plugins") or {})
            capable = "rhapsody" in plugins or {"psij", "queue_info"} <= plugins
            if name != self_edge and capable and not CHILD_RE.search(name):
                configs = {**configs, name: {}}
        if not configs:
            raise WorkflowError("no connected edge can run tasks (none but this one has the "
                                "rhapsody plugin, or psij and queue_info)")
    for name, cc in configs.items():
        edge = cc.get("edge", name)
        kind = cc.get("type", "auto")
        out.append(Cluster(name=name, edge=edge, cfg=dict(cc),
                           status=ClusterStatus(name=name, edge_name=edge, cluster_type=kind,
                                                has_gpu=bool(cc.get("gpu", False)))))
    return out


def classify(bc: BridgeClient, cluster: Cluster, edges: dict) -> str:
    """``immediate`` or ``allocate`` (a forced type wins; else asked of queue_info)."""
    info = edges.get(cluster.edge)
    if info is None:
        raise ClusterLost(f"edge '{cluster.edge}' is not connected")
    plugins = set(info.get("plugins") or {})
    kind = cluster.cfg.get("type", "auto")
    if kind == "auto":
        if info.get("role") == "compute" or "queue_info" not in plugins:
            kind = "immediate"
        else:
            qi = cluster.client(bc, "queue_info", cluster.edge)
            backend = qi.backend()
            inside = qi.job_allocation() if backend != "none" else None
            kind = "allocate" if backend in EXECUTORS and not inside else "immediate"
            cluster.cfg.setdefault("executor", EXECUTORS.get(backend))
    need = "psij" if kind == "allocate" else "rhapsody"
    if need not in plugins:
        raise ClusterLost(f"cluster '{cluster.name}' is {kind} but edge '{cluster.edge}' has "
                          f"no {need} plugin")
    cluster.status.cluster_type = kind
    if kind == "immediate":
        cluster.exec_edge = cluster.edge
    return kind


def child_name(cluster: Cluster, run_id: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", cluster.name)[:40].strip("-.") or "cluster"
    return f"{base}.xgf-{run_id}"


def allocate(bc: BridgeClient, cluster: Cluster, run_id: str, timeout: float,
             edges: Callable[[], dict], check: Callable[[], None],
             changed: Callable[[], None]) -> None:
    """Submit a child edge as a batch job on `cluster` and wait until it joins the bridge.

    `check` raises `Stopped` when the workflow is stopped; `changed` publishes the state.
    """
    cc = cluster.cfg
    executor = cc.get("executor") or "slurm"
    timeout = float(cc.get("alloc_timeout", timeout))
    name = child_name(cluster, run_id)
    attributes = {**(cc.get("attributes") or {}), "duration": int(cc.get("duration", 1800))}
    for key, attr in (("queue", "queue_name"), ("account", "account")):
        if cc.get(key):
            attributes[attr] = cc[key]
    spec = {"arguments": ["-n", name, "-p", CHILD_PLUGINS], "attributes": attributes,
            "environment": dict(cc.get("environment") or {}),
            "name": f"xgf-{run_id}"}
    psij = cluster.client(bc, "psij", cluster.edge)
    sub = psij.submit_tunneled(spec, executor=executor, tunnel=bool(cc.get("tunnel", False)))
    cluster.job_id = sub["job_id"]
    cluster.status.pilot_job_id = sub.get("native_id") or sub["job_id"]
    cluster.status.pilot_status = "QUEUED"
    cluster.status.exec_edge = name  # planned; `exec_edge` is set once it has joined
    changed()
    end = time.monotonic() + timeout
    while True:
        check()
        if name in edges():
            cluster.exec_edge = name
            cluster.status.pilot_status = "ACTIVE"
            return
        state = psij.get_job_status(sub["job_id"]).get("state")
        if state and state != cluster.status.pilot_status:
            cluster.status.pilot_status = state
            changed()
        if state in JOB_FINAL:
            raise ClusterLost(f"batch job {cluster.status.pilot_job_id} ended ({state}) before "
                              f"its edge '{name}' joined")
        if time.monotonic() > end:
            _cancel(psij, cluster)
            raise ClusterLost(f"edge '{name}' did not join within {timeout:g} s of submitting "
                              f"batch job {cluster.status.pilot_job_id} (state {state}); "
                              "job canceled")
        time.sleep(1.0)


def _cancel(psij: Any, cluster: Cluster) -> dict[str, Any]:
    """Cancel the cluster's batch job (once): ``{"job_canceled"}`` or ``{"job_error"}``."""
    if cluster.status.pilot_status == "CANCELED":
        return {"job_canceled": cluster.status.pilot_job_id}
    try:
        psij.cancel_job(cluster.job_id)
    except EdgeError as exc:
        if exc.status != 409:  # 409: the job had ended already
            return {"job_error": exc.detail}
        return {"job_canceled": None}
    finally:
        cluster.status.pilot_status = "CANCELED"
    return {"job_canceled": cluster.status.pilot_job_id}


def release(bc: BridgeClient, cluster: Cluster, edges: Callable[[], dict],
            timeout: float) -> dict:
    """Cancel the cluster's rhapsody tasks and batch job; wait for its child edge to leave.

    Returns what was done: ``{"tasks_canceled", "job_canceled", "edge_gone"}``.
    """
    done: dict[str, Any] = {"cluster": cluster.name, "tasks_canceled": 0}
    for key, client in list(cluster.clients.items()):
        if key.endswith("/rhapsody"):
            try:
                done["tasks_canceled"] += int(client.cancel_all_tasks().get("canceled", 0))
            except Exception as exc:
                log.debug("cancel_all on %s: %s", key, exc)
    psij = cluster.clients.get(f"{cluster.edge}/psij")
    if cluster.job_id and psij is not None:
        done.update(_cancel(psij, cluster))
    child = cluster.exec_edge if cluster.job_id else None  # a child edge that had joined
    if child:
        end = time.monotonic() + timeout
        while child in edges() and time.monotonic() < end:
            time.sleep(0.5)
        done["edge_gone"] = child not in edges()
        done["edge"] = child
    cluster.close_clients()
    return done
