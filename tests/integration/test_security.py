"""Bearer-token auth on every route, HTTPS with a given certificate, JSON-only broker."""
from __future__ import annotations

import subprocess
from pathlib import Path

import authed
import httpx
import pytest

from radical.edge import BridgeClient, EdgeError, services

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def auth_bridge(redis_url, log_dir):
    svc = services.start_bridge(redis_url, log_dir=log_dir, token=TOKEN)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def auth_edge(redis_url, auth_bridge, log_dir):
    svc = services.start_edge(redis_url, "authedge", "echo", log_dir,
                              bridge_url=auth_bridge.extra["url"], token=TOKEN)
    yield svc
    svc.stop()


@pytest.mark.parametrize("method,path", [
    ("POST", "/edge/list"), ("GET", "/events"), ("POST", "/edge/disconnect/authedge"),
    ("POST", "/bridge/terminate"), ("GET", "/authedge/echo/version"),
    ("POST", "/authedge/echo/register_session"), ("GET", "/openapi.json"),
])
def test_every_route_needs_the_token(auth_bridge, auth_edge, method, path):
    url = auth_bridge.extra["url"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = httpx.request(method, url + path, headers=headers, timeout=5)
        assert r.status_code == 401, (path, headers, r.status_code)
        assert r.json()["detail"] == "missing or invalid bearer token"
        assert r.headers["www-authenticate"] == "Bearer"
    assert auth_bridge.alive() and auth_edge.alive()


def test_token_accepted_by_header_only(auth_bridge, auth_edge):
    url = auth_bridge.extra["url"]
    r = httpx.get(f"{url}/authedge/echo/echo/x", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert r.json()["identity"] == {"user": "admin", "scope": "admin"}  # the edge learns it
    # neither a cookie nor ?token= is a credential any more
    assert httpx.get(f"{url}/authedge/echo/echo/x",
                     cookies={"radical_edge_token": TOKEN}).status_code == 401
    assert httpx.get(f"{url}/authedge/echo/echo/x", params={"token": TOKEN}).status_code == 401


def test_portal_shell_loads_without_token(auth_bridge):
    r = httpx.get(auth_bridge.extra["url"] + "/", timeout=5)
    assert r.status_code == 200


def test_sdk_with_token(auth_bridge, auth_edge, monkeypatch):
    url = auth_bridge.extra["url"]
    with pytest.raises(EdgeError) as err:
        BridgeClient(url, token="nope").list_edges()
    assert err.value.status == 401
    monkeypatch.setenv("RADICAL_EDGE_TOKEN", TOKEN)
    bc = BridgeClient(url)
    try:
        assert "authedge" in bc.list_edges()
        assert bc.wait_for_listener(10)
    finally:
        bc.close()


def test_token_never_logged(redis_url, log_dir, auth_edge):
    """With the access log on and DEBUG logging, requests are logged, their tokens are not."""
    logged = services.start_bridge(redis_url, log_dir=log_dir, token=TOKEN,
                                   env={"RADICAL_EDGE_ACCESS_LOG": "true",
                                        "RADICAL_EDGE_LOG_LEVEL": "DEBUG"})
    try:
        r = httpx.get(f"{logged.extra['url']}/authedge/echo/version", params={"token": TOKEN},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert r.status_code == 200
        services.wait_until(lambda: "/authedge/echo/version" in logged.log_tail(200), 10,
                            "the access log line of the request")
    finally:
        logged.stop()
    for log in (logged.log_path, auth_edge.log_path):
        assert TOKEN not in Path(log).read_text(errors="replace")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "bridge_cert.pem", d / "bridge_key.pem"
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey", "rsa:2048",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=RADICAL",
                    "-addext", "subjectAltName = IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def test_https_bridge_with_given_cert(redis_url, log_dir, tls_files, monkeypatch):
    cert, key = tls_files
    svc = services.start_bridge(redis_url, log_dir=log_dir, cert=cert, key=key)
    edge = services.start_edge(redis_url, "tlsedge", "sysinfo", log_dir)
    try:
        url = svc.extra["url"]
        assert url.startswith("https://")
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{url}/edge/list", timeout=5)  # not trusted without the cert
        monkeypatch.setenv("RADICAL_BRIDGE_URL", url)
        monkeypatch.setenv("RADICAL_BRIDGE_CERT", cert)
        bc = BridgeClient()
        try:
            services.wait_until(lambda: "tlsedge" in bc.list_edges(), 20, "tls edge")
            si = bc.get_edge_client("tlsedge").get_plugin("sysinfo")
            assert si.get_metrics()["memory"]["total"] > 0
            assert bc.wait_for_listener(10)
            si.close()
        finally:
            bc.close()
    finally:
        edge.stop()
        svc.stop()


def test_broker_refuses_pickle(redis_url, make_edge, bridge_url):
    """A pickled task message pushed on an edge queue is rejected, never unpickled."""
    import base64
    import json
    import pickle

    import redis

    svc = make_edge("echo", name="nopickle")
    marker = Path("/tmp") / f"radical-edge-pickle-{svc.pid}"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    body = pickle.dumps(([], {"call": Evil()}, {}))
    msg = {"body": base64.b64encode(body).decode(), "content-encoding": "binary",
           "content-type": "application/x-python-serialize",
           "headers": {"lang": "py", "task": "radical.edge.call", "id": "evil-1"},
           "properties": {"delivery_tag": "evil-1", "body_encoding": "base64",
                          "delivery_info": {"exchange": "", "routing_key": "edge.nopickle"}}}
    client = redis.Redis.from_url(redis_url)
    client.lpush("edge.nopickle", json.dumps(msg))
    # the queue is FIFO: once a later call is answered, the edge has taken the pickle
    assert authed.get(f"{bridge_url}/nopickle/echo/version", timeout=10).status_code == 200
    assert client.llen("edge.nopickle") == 0
    assert not marker.exists()
    assert svc.alive()
