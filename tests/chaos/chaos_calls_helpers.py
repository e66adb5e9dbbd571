"""Helpers of the call-outcome chaos tests: a private Redis + bridge + edge, calls whose side
effect can be counted afterwards, and the truth check (an answer never lies about a run).

Each call carries a unique `tag`; the echo plugin counts handler starts per tag, so after the
fault we ask the (surviving) edge how often each call really ran and compare with what its
client was told: 503 (outcome not_run) must mean 0 runs, 200 must mean exactly 1.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services

FIGURES = Path(os.environ.get("RADICAL_EDGE_CHAOS_FIGURES",
                              Path(__file__).resolve().parents[2] / ".run" / "chaos-calls.json"))


@dataclass
class Answer:
    tag: str
    status: int
    body: dict
    sent: float  # monotonic
    answered: float  # monotonic

    @property
    def outcome(self) -> str:
        if self.status < 500:
            return "answered"
        return self.body.get("outcome", "none")


@dataclass
class Stack:
    """Private Redis, bridge and one echo edge; stopped by PID on exit."""

    log_dir: Path
    redis: services.Service | None = None
    bridge: services.Service | None = None
    edge: services.Service | None = None
    edge_name: str = field(default_factory=lambda: f"chaos{uuid.uuid4().hex[:6]}")

    def __enter__(self) -> "Stack":
        self.redis = services.start_redis(log_dir=self.log_dir)
        self.bridge = services.start_bridge(self.redis_url, log_dir=self.log_dir)
        self.edge = services.start_edge(self.redis_url, self.edge_name, "echo", self.log_dir,
                                        bridge_url=self.url)
        return self

    def __exit__(self, *_exc: object) -> None:
        for svc in (self.edge, self.bridge, self.redis):
            if svc is not None:
                svc.stop()

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return self.redis.extra["url"]

    @property
    def url(self) -> str:
        assert self.bridge is not None
        return self.bridge.extra["url"]

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.stop()

    def start_redis(self) -> None:
        assert self.redis is not None
        self.redis = services.start_redis(port=self.redis.extra["port"], log_dir=self.log_dir)

    def call(self, seconds: float, tag: str | None = None, timeout: float = 20.0) -> Answer:
        """One `sleep` call; never raises (a transport failure is status 0)."""
        tag = tag or uuid.uuid4().hex
        t0 = time.monotonic()
        try:
            r = authed.get(f"{self.url}/{self.edge_name}/echo/sleep/{seconds}",
                          params={"tag": tag}, headers={"x-radical-timeout": f"{timeout:g}"},
                          timeout=timeout + 30)
            status, body = r.status_code, _json(r)
        except httpx.HTTPError as exc:
            status, body = 0, {"detail": str(exc)}
        return Answer(tag, status, body, t0, time.monotonic())

    def runs(self, tag: str) -> int:
        r = authed.get(f"{self.url}/{self.edge_name}/echo/runs/{tag}", timeout=10)
        r.raise_for_status()
        return r.json()["runs"]

    def wait_serving(self, timeout: float, step: float = 0.05) -> float:
        """Seconds until a call succeeds (polling); raises after `timeout`."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                r = authed.get(f"{self.url}/{self.edge_name}/echo/version", timeout=2,
                              headers={"x-radical-timeout": "2"})
                if r.status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(step)
        raise AssertionError(f"not serving {timeout} s after recovery")


def _json(r: httpx.Response) -> dict:
    try:
        doc = r.json()
    except ValueError:
        return {"raw": r.text[:200]}
    return doc if isinstance(doc, dict) else {"value": doc}


def misreported(stack: Stack, answers: list[Answer]) -> list[str]:
    """Every answer that lied about execution (checked against the edge's run counters)."""
    lies = []
    for a in answers:
        ran = stack.runs(a.tag)
        if a.status == 503 and ran:
            lies.append(f"{a.tag}: 503 but ran {ran}x ({a.body})")
        if a.status == 503 and a.body.get("outcome") != "not_run":
            lies.append(f"{a.tag}: 503 without outcome not_run ({a.body})")
        if a.status == 200 and ran != 1:
            lies.append(f"{a.tag}: 200 but ran {ran}x")
        if a.status >= 500 and a.status != 503 and a.body.get("outcome") != "unknown":
            lies.append(f"{a.tag}: {a.status} without outcome unknown ({a.body})")
        if ran > 1:
            lies.append(f"{a.tag}: ran {ran}x")
    return lies


def record(scenario: str, **figures: object) -> None:
    """Append one scenario's figures to the chaos figures file (for docs/reliability.md)."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[scenario] = {**figures, "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    FIGURES.write_text(json.dumps(data, indent=1, sort_keys=True))
    print(f"\n[chaos-calls] {scenario}: {figures}")


def counts(answers: list[Answer]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in answers:
        key = f"{a.status} {a.outcome}" if a.status >= 500 else str(a.status)
        out[key] = out.get(key, 0) + 1
    return out
