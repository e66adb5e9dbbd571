"""Stub tasks of the `test` workflow: stand-ins for the CFD solver, the trainers and the
evaluation, cheap enough to run anywhere and deterministic enough to check.

Rhapsody runs only allow-listed functions; this module is allow-listed on every edge through
the ``radical.edge.functions`` entry point in pyproject.toml.  Every function here is pure
computation over its arguments, except `simulate`, which reads the sensor file the workflow
staged — and answers only numbers derived from it, never the file's content.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any

__all__ = ["simulate", "train", "evaluate"]

#: most solver steps `simulate` iterates
MAX_STEPS = 1_000_000
#: largest sensor file `simulate` reads (bytes)
MAX_SENSOR_BYTES = 4 * 1024 * 1024


def _readings(sensor_file: str) -> list[dict]:
    if not os.path.isabs(sensor_file) or os.path.getsize(sensor_file) > MAX_SENSOR_BYTES:
        raise ValueError(f"sensor file must be an absolute path to at most "
                         f"{MAX_SENSOR_BYTES} bytes")
    with open(sensor_file, encoding="utf-8") as fh:
        data = json.load(fh)
    readings = data.get("readings") if isinstance(data, dict) else None
    if not isinstance(readings, list) or not readings:
        raise ValueError("sensor file holds no 'readings' list")
    return [r for r in readings if isinstance(r, dict)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def simulate(sim_id: int | str, sensor_file: str, steps: int = 20,
             seconds: float = 0.0) -> dict[str, Any]:
    """A mock CFD run: an inflow from the sensor readings, perturbed per simulation."""
    sim = int(sim_id)
    readings = _readings(sensor_file)
    wind = _mean([float(r.get("wind_speed", 0.0)) for r in readings])
    temp = _mean([float(r.get("temperature", 0.0)) for r in readings])
    if seconds > 0:
        time.sleep(min(float(seconds), 60.0))
    inflow = wind * (1.0 + 0.05 * math.sin(sim))
    residual = 1.0
    steps = min(max(1, int(steps)), MAX_STEPS)  # a stub: bounded work whatever is asked
    for _step in range(steps):
        residual *= 0.9 - 0.001 * (sim % 7)
    return {"sim_id": sim, "inflow": round(inflow, 6), "temperature": round(temp, 4),
            "drag": round(0.5 * 1.2 * inflow ** 2 * 0.8, 6), "residual": residual,
            "steps": int(steps), "readings": len(readings), "host": os.uname().nodename}


def train(model: str, results: list[dict], seconds: float = 0.0) -> dict[str, Any]:
    """A mock surrogate: a least-squares line drag ~ inflow over the simulation results."""
    pts = [(float(r["inflow"]), float(r["drag"])) for r in results
           if isinstance(r, dict) and "inflow" in r and "drag" in r]
    if not pts:
        raise ValueError(f"model {model}: no simulation results to train on")
    if seconds > 0:
        time.sleep(min(float(seconds), 60.0))
    mx, my = _mean([p[0] for p in pts]), _mean([p[1] for p in pts])
    var = sum((x - mx) ** 2 for x, _ in pts) or 1e-12
    slope = sum((x - mx) * (y - my) for x, y in pts) / var
    loss = _mean([(y - (my + slope * (x - mx))) ** 2 for x, y in pts])
    return {"model": model, "samples": len(pts), "slope": slope, "loss": loss,
            "sim_ids": sorted(int(r["sim_id"]) for r in results if "sim_id" in r)}


def evaluate(models: list[dict]) -> dict[str, Any]:
    """Rank the trained models by loss."""
    scored = {str(m["model"]): float(m["loss"]) for m in models
              if isinstance(m, dict) and "model" in m and "loss" in m}
    if not scored:
        raise ValueError("no trained models to evaluate")
    return {"best": min(scored, key=scored.__getitem__), "scores": scored}
