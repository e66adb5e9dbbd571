"""Fixtures that start real services through the project's own `radical.edge.services`.

The whole test session gets a private Redis on a free port (never the machine's shared one),
one bridge, and factories for further edges and bridges. Everything started here is stopped
by PID at the end.
"""
from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # shared helpers: plain imports
sys.path.insert(0, str(ROOT / "tests"))  # `compat` (the original client stand-in)

from radical.edge import services  # noqa: E402

#: under CI every component must be there: a skip is turned into a failure (see hooks below)
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

LOG_DIR = Path(os.environ.get("RADICAL_EDGE_TEST_LOGS", ROOT / ".run" / "test-logs"))

# Bridges are closed by default, in tests too: every bridge the fixtures start needs this
# admin token, which reaches bridges and SDK clients through the environment (never argv),
# and the token file is a private temporary one (never the user's ~/.radical/edge/token).
os.environ.setdefault("RADICAL_EDGE_TOKEN", f"test-admin-{uuid.uuid4().hex}")
os.environ.setdefault("RADICAL_EDGE_TOKEN_FILE",
                      str(Path(tempfile.mkdtemp(prefix="radical-edge-auth-")) / "token"))


@pytest.fixture(scope="session")
def log_dir() -> Path:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return LOG_DIR


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[dict]:
    """The single-node SLURM cluster (tests/integration/slurm_fixture.py)."""
    from slurm_fixture import running_cluster

    yield from running_cluster()


@pytest.fixture(scope="module")
def test_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A throwaway sshd on 127.0.0.1 (asyncssh, an `hpc` extra: imported only when used)."""
    from sshd_fixture import LocalSSHD

    sshd = LocalSSHD(tmp_path_factory.mktemp("sshd")).start()
    yield sshd
    sshd.stop()


@pytest.fixture(scope="session")
def redis_service(log_dir: Path) -> Iterator[services.Service]:
    svc = services.start_redis(log_dir=log_dir)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def redis_url(redis_service: services.Service) -> str:
    return redis_service.extra["url"]


@pytest.fixture(scope="session")
def bridge(redis_url: str, log_dir: Path) -> Iterator[services.Service]:
    svc = services.start_bridge(redis_url, log_dir=log_dir)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def bridge_url(bridge: services.Service) -> str:
    return bridge.extra["url"]


class EdgeStarter:
    """Starts edges on the session's Redis and bridge; stops them all at the end of a scope."""

    def __init__(self, redis_url: str, bridge_url: str, log_dir: Path) -> None:
        self.redis_url, self.bridge_url, self.log_dir = redis_url, bridge_url, log_dir
        self.started: list[services.Service] = []

    def __call__(self, plugins: str = "sysinfo", name: str | None = None,
                 env: dict[str, str] | None = None, wait: float = 30.0) -> services.Service:
        svc = services.start_edge(self.redis_url, name or f"t{uuid.uuid4().hex[:8]}", plugins,
                                  self.log_dir, env=env,
                                  bridge_url=self.bridge_url if wait else None, wait=wait)
        self.started.append(svc)
        return svc

    def psij_edge(self, plugins: str, prefix: str) -> str:
        """A new edge named `prefix`+random with its own psij file root; its name."""
        name = f"{prefix}{uuid.uuid4().hex[:6]}"
        psij_dir = Path(tempfile.mkdtemp(prefix=f"psij-{name}-", dir=self.log_dir))
        self(plugins, name=name, env={"RADICAL_EDGE_PSIJ_DIR": str(psij_dir)})
        return name

    def stop_all(self) -> None:
        for svc in reversed(self.started):
            svc.stop()


@pytest.fixture
def make_edge(redis_url: str, bridge_url: str, log_dir: Path) -> Iterator[EdgeStarter]:
    """Edges for one test: make_edge(plugins='sysinfo', name=None, env=None, wait=30)."""
    starter = EdgeStarter(redis_url, bridge_url, log_dir)
    yield starter
    starter.stop_all()


@pytest.fixture(scope="module")
def module_edges(redis_url: str, bridge_url: str, log_dir: Path) -> Iterator[EdgeStarter]:
    """Edges shared by the tests of one module; same call as `make_edge`."""
    starter = EdgeStarter(redis_url, bridge_url, log_dir)
    yield starter
    starter.stop_all()


@pytest.fixture
def make_bridge(redis_url: str, log_dir: Path) -> Iterator[Callable[..., services.Service]]:
    started: list[services.Service] = []

    def factory(**kw: object) -> services.Service:
        svc = services.start_bridge(kw.pop("redis_url", redis_url), log_dir=log_dir, **kw)
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        svc.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread for the rest of the session, after which `asyncio.run()` in other tests fails."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path))


def _skip_reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Under CI=true a skipped test fails: a suite must not go green by skipping."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: " \
                          f"{_skip_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """The same for whole modules skipped at import (importorskip, allow_module_level)."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"module skipped under CI=true, which counts as a failure: " \
                          f"{_skip_reason(report.longrepr)}"
