"""Plain httpx calls that present the test session's admin token (see tests/conftest.py).

The session's bridges are closed by default, like a real one: tests that talk raw HTTP to a
bridge use these instead of `httpx.get/post`, or `AUTH` as headers of their own client.
"""
from __future__ import annotations

import os
from typing import Any

import httpx

TOKEN = os.environ["RADICAL_EDGE_TOKEN"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    """`httpx.request` with the token; raw `content=` goes out as application/octet-stream
    (the bridge refuses bodies of a type a cross-site form could send)."""
    headers = {**AUTH, **(kw.get("headers") or {})}
    if kw.get("content") is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/octet-stream"
    kw["headers"] = headers
    return httpx.request(method, url, **kw)


def get(url: str, **kw: Any) -> httpx.Response:
    return request("GET", url, **kw)


def post(url: str, **kw: Any) -> httpx.Response:
    return request("POST", url, **kw)


def new_token(bridge_url: str, user: str, scope: str, expires: str | None = None) -> str:
    """A named token of `user` with `scope`, issued by the bridge (admin call)."""
    r = post(f"{bridge_url}/bridge/tokens", json={"user": user, "scope": scope,
                                                  "expires": expires}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["token"]
