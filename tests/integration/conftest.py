"""Fixtures shared by the psij integration modules; each module defines its own `parent`
edge (local executor with a test sshd, or on SLURM)."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from radical.edge import BridgeClient
from radical.edge.app import keys


@pytest.fixture(scope="module")
def psij_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def bc(bridge_url: str) -> Iterator[BridgeClient]:
    client = BridgeClient(bridge_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def notes(bc: BridgeClient, parent):
    from psij_helpers import Notes

    n = Notes(bc, parent.extra["name"])
    yield n
    n.close()


@pytest.fixture
def pj(bc: BridgeClient, parent):
    client = bc.get_edge_client(parent.extra["name"]).get_plugin("psij")
    yield client
    client.close()  # cancels whatever a failed test left running


@pytest.fixture
def stream_keys(monkeypatch):
    """Private stream names: the session's Redis is shared with running bridges and edges."""
    tag = uuid.uuid4().hex[:8]
    for name in ("NOTIFICATIONS", "NOTIFICATIONS_READERS", "NOTIFICATIONS_TRIMMED",
                 "NOTIFICATIONS_EPOCH"):
        monkeypatch.setattr(keys, name, f"{getattr(keys, name)}:test-{tag}")
    return keys
