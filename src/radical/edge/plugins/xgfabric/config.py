"""Workflow and resource configurations of the xgfabric plugin, and where they are kept.

A *workflow* config (`WorkflowConfig`) says what to run: the sensor data, how many
simulations in batches of what size, the task templates of the simulations, of one training
task per model and of the evaluation.  A *resource* config (`ResourceConfig`) says where: the
bridge and, per cluster, the edge that fronts it and its scheduler settings.

Both are saved as ``<name>.json`` in a config directory (``{"kind": "workflow"|"resource",
...fields}``).  Built-ins: workflow ``default`` (executables of a real CFD/AI site; needs CSPOT)
and ``test`` (allow-listed stub functions and mock sensor data, runs anywhere), resource
``default`` (every connected edge, classified automatically).  ``__default__`` names the saved
config called ``default`` when there is one, else the built-in.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

from ...errors import StatusError

__all__ = ["ConfigError", "ConfigStore", "ResourceConfig", "WorkflowConfig", "BUILTIN_WORKFLOWS",
           "BUILTIN_RESOURCES", "DEFAULT_ALIAS", "config_to_dict", "dict_to_config",
           "dict_to_resource_config", "resource_to_dict", "CLUSTER_TYPES", "STUBS"]

DEFAULT_ALIAS = "__default__"
#: what a config name may look like (it becomes a file name)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: cluster types a resource config may force (else detected from queue_info)
CLUSTER_TYPES = ("immediate", "allocate")
#: import path of the stub task functions of the `test` workflow (allow-listed, see stubs.py)
STUBS = "radical.edge.plugins.xgfabric.stubs"
#: largest config file read or written (bytes)
MAX_CONFIG_BYTES = 256 * 1024


class ConfigError(StatusError, ValueError):
    """A config that cannot be used; `status` is the HTTP status to answer with."""

    def __init__(self, detail: str, status: int = 422) -> None:
        super().__init__(detail, status)


@dataclass
class ResourceConfig:
    """Resource configuration — bridge connection and per-cluster scheduler settings.

    `cluster_configs` maps a cluster name to ``{"edge": edge name (default: the cluster
    name), "type": "immediate"|"allocate" (default: detected), "executor", "queue",
    "account", "duration" (s), "attributes" (more psij job attributes), "alloc_timeout" (s),
    "tunnel", "environment", "gpu", "workspace"}``.  Empty: every
    connected edge but this one that can run tasks, classified automatically.
    """

    name: str = "default"
    bridge_url: str = "https://localhost:8000"
    bridge_cert: Optional[str] = None
    cluster_configs: Dict[str, Dict] = field(default_factory=dict)


@dataclass
class WorkflowConfig:
    """Workflow configuration — task templates and execution parameters.

    Task templates are rhapsody task dicts; in their strings ``{sim_id}``, ``{batch}``,
    ``{input}`` (the staged sensor file), ``{workspace}``, ``{cluster}`` and ``{model}`` are
    filled in, and a string that is exactly ``{results}`` (training) or ``{models}``
    (evaluation) becomes the list of earlier results.
    """

    name: str = "default"
    description: str = ""
    local_workspace: str = "/tmp/xgfabric_workspace"
    cspot_woof_url: str = "woof://128.111.45.61/davisstations/daviscupsout"
    cspot_limit: int = 10
    num_simulations: int = 16
    batch_size: int = 4
    train_models: List[str] = field(default_factory=lambda: ["mlp", "gnn"])
    simulation_task: Optional[Dict] = None
    training_tasks: Dict[str, Dict] = field(default_factory=dict)
    evaluation_task: Optional[Dict] = None
    mock_sensor_data: bool = False


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def config_to_dict(cfg: WorkflowConfig) -> Dict:
    """Convert config to JSON-serializable dict."""
    return asdict(cfg)


def resource_to_dict(cfg: ResourceConfig) -> Dict:
    return asdict(cfg)


def dict_to_config(d: Dict) -> WorkflowConfig:
    """Convert dict to WorkflowConfig, filtering unknown fields; 422 for wrong types."""
    if not isinstance(d, dict):
        raise ConfigError(f"a workflow config must be a JSON object, not {type(d).__name__}")
    cfg = WorkflowConfig(**{k: v for k, v in d.items() if k in _fields(WorkflowConfig)})
    check_workflow(cfg)
    return cfg


def dict_to_resource_config(d: Dict) -> ResourceConfig:
    """Convert dict to ResourceConfig, ignoring unknown fields; 422 for wrong types."""
    if not isinstance(d, dict):
        raise ConfigError(f"a resource config must be a JSON object, not {type(d).__name__}")
    cfg = ResourceConfig(**{k: v for k, v in d.items() if k in _fields(ResourceConfig)})
    check_resource(cfg)
    return cfg


# -- validation -------------------------------------------------------------------------------
def _need(ok: bool, detail: str) -> None:
    if not ok:
        raise ConfigError(detail)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _task(value: Any, what: str) -> None:
    _need(isinstance(value, dict), f"{what} must be a rhapsody task object, not "
                                   f"{type(value).__name__}")
    has_exe, has_fn = bool(value.get("executable")), bool(value.get("function"))
    _need(has_exe != has_fn, f"{what} needs an 'executable' or a 'function' (not both)")


def check_workflow(cfg: WorkflowConfig) -> None:
    """422 with what is wrong, before anything runs."""
    _need(isinstance(cfg.name, str) and bool(NAME_RE.match(cfg.name)),
          f"workflow name {cfg.name!r} is not a valid name (letters, digits, '_', '.', '-')")
    _need(isinstance(cfg.description, str), "description must be a string")
    _need(isinstance(cfg.local_workspace, str) and os.path.isabs(cfg.local_workspace),
          f"local_workspace must be an absolute path, got {cfg.local_workspace!r}")
    _need(_int(cfg.num_simulations) and 1 <= cfg.num_simulations <= 100_000,
          f"num_simulations must be an integer from 1 to 100000, got {cfg.num_simulations!r}")
    _need(_int(cfg.batch_size) and 1 <= cfg.batch_size <= 10_000,
          f"batch_size must be an integer from 1 to 10000, got {cfg.batch_size!r}")
    _need(_int(cfg.cspot_limit) and 1 <= cfg.cspot_limit <= 100_000,
          f"cspot_limit must be an integer from 1 to 100000, got {cfg.cspot_limit!r}")
    _need(isinstance(cfg.cspot_woof_url, str), "cspot_woof_url must be a string")
    _need(isinstance(cfg.mock_sensor_data, bool), "mock_sensor_data must be true or false")
    _need(isinstance(cfg.train_models, list) and all(isinstance(m, str) and m
                                                     for m in cfg.train_models),
          "train_models must be a list of model names")
    _need(isinstance(cfg.training_tasks, dict), "training_tasks must map model names to tasks")
    if cfg.simulation_task is None:
        raise ConfigError("simulation_task is missing: the workflow has nothing to simulate")
    _task(cfg.simulation_task, "simulation_task")
    for model in cfg.train_models:
        _need(model in cfg.training_tasks,
              f"train_models names '{model}' but training_tasks has no task for it")
        _task(cfg.training_tasks[model], f"training_tasks['{model}']")
    if cfg.evaluation_task is not None:
        _task(cfg.evaluation_task, "evaluation_task")


def check_bridge_url(url: Any) -> str:
    """An http(s) URL without credentials: configs, states and logs show it, so a token in
    it would leak (the edge's token comes from its environment or token file)."""
    _need(isinstance(url, str) and url.startswith(("http://", "https://")),
          f"bridge_url must be an http(s) URL, got {url!r}")
    _need(urlsplit(url).username is None and urlsplit(url).password is None,
          "bridge_url must not carry credentials: give the edge RADICAL_EDGE_TOKEN instead")
    return url


def check_resource(cfg: ResourceConfig) -> None:
    _need(isinstance(cfg.name, str) and bool(NAME_RE.match(cfg.name)),
          f"resource name {cfg.name!r} is not a valid name (letters, digits, '_', '.', '-')")
    check_bridge_url(cfg.bridge_url)
    _need(cfg.bridge_cert is None or isinstance(cfg.bridge_cert, str),
          "bridge_cert must be a path or null")
    _need(isinstance(cfg.cluster_configs, dict), "cluster_configs must map cluster names to "
                                                 "settings")
    for name, cc in cfg.cluster_configs.items():
        _need(isinstance(cc, dict), f"cluster_configs['{name}'] must be an object")
        kind = cc.get("type", "auto")
        _need(kind in (*CLUSTER_TYPES, "auto"),
              f"cluster_configs['{name}'].type must be one of immediate, allocate, auto; "
              f"got {kind!r}")
        _need(isinstance(cc.get("edge", name), str), f"cluster_configs['{name}'].edge must be "
                                                     "an edge name")
        env = cc.get("environment", {})
        _need(isinstance(env, dict) and all(isinstance(v, str) for v in env.values()),
              f"cluster_configs['{name}'].environment must map names to strings")
        attrs = cc.get("attributes", {})
        _need(isinstance(attrs, dict), f"cluster_configs['{name}'].attributes must be an object "
                                       "of psij job attributes")
        wait = cc.get("alloc_timeout", 1)
        _need(isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait > 0,
              f"cluster_configs['{name}'].alloc_timeout must be a positive number of seconds")
        duration = cc.get("duration", 1800)
        _need(_int(duration) and duration > 0,
              f"cluster_configs['{name}'].duration must be a positive number of seconds")


# -- built-ins --------------------------------------------------------------------------------
def _default_workflow() -> WorkflowConfig:
    return WorkflowConfig(
        name="default",
        description="CFD ensemble (OpenFOAM) driven by live CSPOT sensor data, then surrogate "
                    "models trained and evaluated on the results",
        simulation_task={"executable": "xgfabric-simulate",
                         "arguments": ["--input", "{input}", "--case", "{workspace}/sim_{sim_id}"],
                         "timeout": 3600},
        training_tasks={m: {"executable": "xgfabric-train",
                            "arguments": ["--model", m, "--data", "{workspace}"]}
                        for m in ("mlp", "gnn")},
        evaluation_task={"executable": "xgfabric-evaluate", "arguments": ["{workspace}"]},
    )


def _test_workflow() -> WorkflowConfig:
    return WorkflowConfig(
        name="test",
        description="stub tasks and mock sensor data: the whole workflow in seconds, no CSPOT",
        num_simulations=6,
        batch_size=2,
        cspot_limit=8,
        train_models=["mlp", "gnn"],
        simulation_task={"function": f"{STUBS}:simulate",
                         "kwargs": {"sim_id": "{sim_id}", "sensor_file": "{input}",
                                    "steps": 20, "seconds": 0.2}},
        training_tasks={m: {"function": f"{STUBS}:train",
                            "kwargs": {"model": m, "results": "{results}", "seconds": 0.2}}
                        for m in ("mlp", "gnn")},
        evaluation_task={"function": f"{STUBS}:evaluate", "kwargs": {"models": "{models}"}},
        mock_sensor_data=True,
    )


BUILTIN_WORKFLOWS = {"default": _default_workflow, "test": _test_workflow}
BUILTIN_RESOURCES = {"default": lambda: ResourceConfig(name="default")}


# -- the config directory ---------------------------------------------------------------------
def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"config name {name!r} is not valid: use letters, digits, '_', '.' "
                          "or '-' (at most 64, no path)")
    return name


class ConfigStore:
    """Configs saved as JSON files in one directory (created on first save)."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(os.path.expanduser(directory))

    def _path(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}.json"

    def _read(self, path: Path) -> dict | None:
        try:
            if path.stat().st_size > MAX_CONFIG_BYTES:
                return None
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def list(self) -> list[dict]:
        """Saved configs, then the built-ins that no saved one shadows."""
        out: list[dict] = []
        seen: set[tuple[str, str]] = set()
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.json")):
                data = self._read(path)
                if data is None or not NAME_RE.match(path.stem):
                    continue
                kind = data.get("kind", "workflow")
                seen.add((kind, path.stem))
                out.append({"name": path.stem, "kind": kind, "builtin": False,
                            "description": str(data.get("description", "")),
                            "modified": path.stat().st_mtime})
        for kind, table in (("workflow", BUILTIN_WORKFLOWS), ("resource", BUILTIN_RESOURCES)):
            for name, make in table.items():
                if (kind, name) not in seen:
                    out.append({"name": name, "kind": kind, "builtin": True,
                                "description": getattr(make(), "description", ""),
                                "modified": None})
        return out

    def load(self, name: str, kind: str | None = None) -> dict:
        """The config named `name` (saved first, then built-in) as a dict with its kind."""
        if name == DEFAULT_ALIAS:
            name = "default"
        path = self._path(name)
        if path.is_file():
            data = self._read(path)
            if data is None:
                raise ConfigError(f"config '{name}' in {self.directory} is not a JSON object "
                                  f"(or larger than {MAX_CONFIG_BYTES} bytes)")
            found = data.get("kind", "workflow")
            if kind is None or found == kind:
                return {**data, "kind": found, "name": name}
        for k, table in (("workflow", BUILTIN_WORKFLOWS), ("resource", BUILTIN_RESOURCES)):
            if (kind is None or k == kind) and name in table:
                return {**asdict(table[name]()), "kind": k, "builtin": True}
        what = f"{kind} config" if kind else "config"
        raise ConfigError(f"no {what} named '{name}' (saved in {self.directory} or built-in)",
                          status=404)

    def workflow(self, name: str) -> WorkflowConfig:
        return dict_to_config(self.load(name, "workflow"))

    def resource(self, name: str) -> ResourceConfig:
        return dict_to_resource_config(self.load(name, "resource"))

    def save(self, data: dict) -> dict:
        """Validate and write; ``{"name", "kind", "path"}``."""
        if not isinstance(data, dict):
            raise ConfigError("save_config expects a JSON object (the config)")
        kind = data.get("kind", "workflow")
        if kind == "resource":
            clean: dict = resource_to_dict(dict_to_resource_config(data))
        elif kind == "workflow":
            clean = config_to_dict(dict_to_config(data))
        else:
            raise ConfigError(f"kind must be 'workflow' or 'resource', got {kind!r}")
        clean["kind"] = kind
        text = json.dumps(clean, indent=2)
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError(f"config is larger than {MAX_CONFIG_BYTES} bytes", status=413)
        path = self._path(clean["name"])
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
        return {"name": clean["name"], "kind": kind, "path": str(path), "saved": time.time()}

    def delete(self, name: str) -> dict:
        path = self._path(name)
        if not path.is_file():
            if name in BUILTIN_WORKFLOWS or name in BUILTIN_RESOURCES:
                raise ConfigError(f"'{name}' is a built-in config and cannot be deleted",
                                  status=409)
            raise ConfigError(f"no saved config named '{name}' in {self.directory}", status=404)
        path.unlink()
        return {"name": name, "deleted": True}
