"""Shared by the rhapsody tests that speak raw HTTP."""
from __future__ import annotations

import httpx

from waiting import wait_for


def rhapsody_session(http: httpx.Client, edge: str, timeout: float = 60) -> str:
    """A new rhapsody session on `edge` (concurrent backend), once it is ready."""
    r = http.post(f"/{edge}/rhapsody/register_session", json={"backends": ["concurrent"]})
    assert r.status_code == 200, r.text
    sid = r.json()["sid"]
    wait_for(lambda: http.get(f"/{edge}/rhapsody/session_status/{sid}").json()["status"]
             == "ready", timeout, what=f"rhapsody session {sid} ready")
    return sid
