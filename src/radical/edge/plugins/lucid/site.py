"""The edge's own batch system as a RADICAL-Pilot resource (`edge.slurm`), and the process
environment RP is started with.

RP reads resource configs only from files: its package's ``resource_<site>.json`` and the
user's ``$RADICAL_CONFIG_USER_DIR/.radical/pilot/configs/`` (default: ``$HOME``). So the
plugin writes ``resource_edge.json`` (built from what `detect_batch_system` finds: partitions,
CPUs and GPUs per node) into a directory of its own under the lucid dir, mirrors the user's
own config files next to it (links) and points `RADICAL_CONFIG_USER_DIR` there: user site
configs keep working and nothing is written into ``~/.radical``.

RP forwards every ``RADICAL_*`` variable into the pilot job, and psij writes them into a
job script readable by others (and SLURM keeps the script): the edge's secrets
(``RADICAL_EDGE_REDIS_URL``, ``RADICAL_EDGE_TOKEN``) must not travel. RP's pilot launcher
runs as a ``radical-pilot-component`` process, found on PATH; a wrapper of that name, first
on PATH, drops ``RADICAL_EDGE_*`` before starting the real one.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException

from radical.edge.hpc.batch import detect_batch_system

from .rp_env import prepare_environment

log = logging.getLogger(__name__)

SITE = "edge"
#: scheduler -> (RP resource manager, job manager endpoint, launch methods in RP's order)
SCHEDULERS: dict[str, tuple[str, str, list[str]]] = {
    "slurm": ("SLURM", "slurm://localhost/", ["FORK", "SRUN"]),
}
LAUNCHER = "radical-pilot-component"
DROP_PREFIX = "RADICAL_EDGE_"

WRAPPER = """#!{python}
# written by radical.edge lucid: RP's components must not inherit the edge's secrets
import os, sys
for key in [k for k in os.environ if k.startswith({prefix!r})]:
    del os.environ[key]
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


@dataclass
class SiteInfo:
    """What the edge offers RP: resource label -> partitions (empty without a scheduler)."""

    resources: dict[str, list[dict]] = field(default_factory=dict)
    config_dir: Path | None = None


def resource_config(scheduler: str, partitions: list[dict]) -> dict[str, Any]:
    """The RP resource config of `scheduler` (sized by its default partition)."""
    manager, endpoint, methods = SCHEDULERS[scheduler]
    default = next((p for p in partitions if p["default"]), partitions[0] if partitions else {})
    return {
        "description": f"this edge's own {scheduler} (written by radical.edge lucid)",
        "default_schema": "local",
        "schemas": {"local": {"job_manager_endpoint": endpoint,
                              "filesystem_endpoint": "file://localhost/"}},
        "default_queue": default.get("name") or "",
        "default_remote_workdir": "$HOME",
        "resource_manager": manager,
        "agent_config": "default",
        "agent_scheduler": "CONTINUOUS",
        "agent_spawner": "POPEN",
        "launch_methods": {"order": methods, **{m: {} for m in methods}},
        "rp_version": "installed",
        "virtenv_mode": "local",
        "python_dist": "default",
        "cores_per_node": default.get("cpus_per_node") or 1,
        "gpus_per_node": default.get("gpus_per_node") or 0,
        "lfs_path_per_node": "/tmp",
        "lfs_size_per_node": 1024,
    }


def check_pilot(desc: dict[str, Any], info: SiteInfo) -> None:
    """422 for an `edge.*` pilot this edge cannot run: no such scheduler here, an unknown
    partition, or a runtime above the partition's limit (SLURM would queue it forever)."""
    label = desc["resource"]
    if not label.startswith(f"{SITE}."):
        return
    parts = info.resources.get(label)
    if parts is None:
        offered = ", ".join(info.resources) or "none, no batch system was found here"
        raise HTTPException(422, f"resource '{label}' is not offered by this edge "
                                 f"(its batch-system resources: {offered})")
    by_name = {p["name"]: p for p in parts}
    queue = desc.get("queue")
    if queue:
        part = by_name.get(queue.split(":", 1)[0])
        if part is None:
            raise HTTPException(422, f"unknown queue '{queue}' for {label}; "
                                     f"partitions: {', '.join(by_name)}")
    else:
        part = next((p for p in parts if p["default"]), None)
    limit = part and part["max_minutes"]
    if limit and desc["runtime"] > limit:
        raise HTTPException(422, f"runtime {desc['runtime']} min exceeds the limit of "
                                 f"partition '{part['name']}' ({limit} min)")


def _mirror_user_configs(dest: Path, source_home: str | None) -> None:
    """Link the user's ``.radical/<module>/configs/*`` into `dest` (ours win on a clash)."""
    if not source_home:
        return
    src_root = Path(source_home) / ".radical"
    for configs in src_root.glob("*/configs"):
        target = dest / ".radical" / configs.parent.name / "configs"
        target.mkdir(parents=True, exist_ok=True)
        for item in configs.iterdir():
            link = target / item.name
            if not link.exists() and not link.is_symlink():
                link.symlink_to(item.resolve())


def _write_wrapper(bindir: Path) -> None:
    real = shutil.which(LAUNCHER, path=os.path.dirname(sys.executable)) or shutil.which(LAUNCHER)
    if not real:
        log.warning("%s not found; RP will not start", LAUNCHER)
        return
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / LAUNCHER
    path.write_text(WRAPPER.format(python=sys.executable, prefix=DROP_PREFIX, real=real))
    path.chmod(0o700)


class EdgeSite:
    """Detects the scheduler once per plugin and prepares RP's config dir and PATH."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._info: SiteInfo | None = None

    def ensure(self) -> SiteInfo:
        """Detect, write and point RP at the config (once; blocking: call in a thread)."""
        with self._lock:
            if self._info is None:
                self._info = self._prepare()
            return self._info

    def cancel_leftover_jobs(self, path: Path) -> list[str]:
        """Batch jobs still running for `path` (a session dir) after RP's close: cancelled
        (an agent on another node is out of reach of a local kill). Blocking."""
        if not (self._info and self._info.resources):
            return []
        return detect_batch_system().cancel_jobs_under(str(path))

    def _prepare(self) -> SiteInfo:
        prepare_environment()  # first: the wrapper's dir must come before the venv's bin/
        batch = detect_batch_system()
        info = SiteInfo()
        if batch.name in SCHEDULERS:
            parts = batch.partitions()
            if parts:
                info.resources[f"{SITE}.{batch.name}"] = parts
            else:
                log.warning("%s found but it lists no partitions: no %s.%s resource",
                            batch.name, SITE, batch.name)
        home = self._root / "rp-config"
        shutil.rmtree(home, ignore_errors=True)
        configs = home / ".radical" / "pilot" / "configs"
        configs.mkdir(parents=True, exist_ok=True)
        if info.resources:
            site = {label.split(".", 1)[1]: resource_config(label.split(".", 1)[1], parts)
                    for label, parts in info.resources.items()}
            (configs / f"resource_{SITE}.json").write_text(json.dumps(site, indent=2))
        source = os.environ.get("RADICAL_CONFIG_USER_DIR") or os.environ.get("HOME")
        if source and Path(source).resolve() != home.resolve():
            _mirror_user_configs(home, source)
        os.environ["RADICAL_CONFIG_USER_DIR"] = str(home)
        bindir = self._root / "rp-bin"
        _write_wrapper(bindir)
        path = os.environ.get("PATH", "")
        if str(bindir) not in path.split(os.pathsep):
            os.environ["PATH"] = os.pathsep.join(p for p in (str(bindir), path) if p)
        info.config_dir = home
        return info
