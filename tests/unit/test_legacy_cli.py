"""Original command-line conventions: plugin prefixes, bridge URLs, tunnel URL rewriting."""
from __future__ import annotations

import pytest

from radical.edge.app.broker import BrokerLookupError, http_url, resolve_redis_url, split_token
from radical.edge.legacy_cli import expand_plugins, service_parser, with_local_port

KNOWN = ["lucid", "psij", "queue_info", "rhapsody", "staging", "sysinfo", "xgfabric"]


@pytest.mark.parametrize("spec,want", [
    ("all", "all"), (None, None), ("sysinfo", "sysinfo"), ("sys,queue", "sysinfo,queue_info"),
    ("s", "staging,sysinfo"), ("psij,ps", "psij"), ("nosuch", "nosuch"),
    (" rhap , ,xg", "rhapsody,xgfabric")])
def test_plugin_prefixes(spec, want):
    assert expand_plugins(spec, KNOWN) == want


def test_original_flags_parse():
    args = service_parser().parse_args(["-n", "e1", "-u", "wss://b:8000", "-p", "sys",
                                        "-l", "debug", "--tunnel"])
    assert (args.name, args.url, args.plugins, args.log_level, args.tunnel) == \
        ("e1", "wss://b:8000", "sys", "debug", True)
    assert service_parser().parse_args(["--tunnel-via", "login1"]).tunnel_via == "login1"


@pytest.mark.parametrize("url,want", [
    ("wss://h:8000/register", "https://h:8000"), ("ws://h:8000/", "http://h:8000"),
    ("https://h:8000/", "https://h:8000")])
def test_bridge_url_forms(url, want):
    assert http_url(url) == want


def test_token_from_url_userinfo():
    assert split_token("https://:T0K@h:8000") == ("https://h:8000", "T0K")
    assert split_token("https://T0K@h:8000") == ("https://h:8000", "T0K")
    assert split_token("https://h:8000") == ("https://h:8000", None)


def test_env_wins_and_missing_bridge_is_clear():
    assert resolve_redis_url("http://x", env={"RADICAL_EDGE_REDIS_URL": "redis://r:1/0"}) \
        == "redis://r:1/0"
    with pytest.raises(BrokerLookupError, match="RADICAL_EDGE_REDIS_URL"):
        resolve_redis_url(None, env={})
    with pytest.raises(BrokerLookupError, match="not reachable"):
        resolve_redis_url("http://127.0.0.1:9", env={}, timeout=2)


def test_tunnel_rewrites_host_port_only():
    assert with_local_port("redis://:pw@10.1.2.3:6380/2", 41000) == \
        "redis://:pw@127.0.0.1:41000/2"
