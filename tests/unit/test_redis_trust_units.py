"""Pure pieces of the Redis trust work: ACL rules, TLS options, enrollment helpers."""
from __future__ import annotations

import ssl

import pytest

from radical.edge import enrollment
from radical.edge.app import acl, keys, tls
from radical.edge.hpc import launch


def test_enrolling_child_does_not_get_the_parents_redis_url():
    spec = launch.child_job_spec({"arguments": ["-n", "kid", "--url", "https://b:8000"],
                                  "environment": {"RADICAL_EDGE_ENROLL_TOKEN": "t"}},
                                 "kid", "redis://parent:pw@h:1/0")
    assert "RADICAL_EDGE_REDIS_URL" not in spec["environment"]
    assert "t" not in spec["arguments"]


def test_edge_rules_are_specific_to_one_name():
    rules = acl.edge_rules("site-a.x", db=3)
    assert f"~{keys.edge_queue('site-a.x')}" in rules
    assert f"~{keys.edge_lease('site-a.x')}" in rules
    assert "&/3.celery.pidbox" in rules
    assert not any(r in ("~*", "allkeys", "allchannels", "+@admin") for r in rules)
    with pytest.raises(ValueError):
        acl.edge_rules("a*")  # no glob can reach a pattern


def test_credentials_url_keeps_query_and_quotes_password():
    creds = acl.Credentials("redge-edge-a", "p@ss/word")
    url = creds.url("rediss://host:6380/2?ssl_ca_certs=/ca.pem")
    assert url == "rediss://redge-edge-a:p%40ss%2Fword@host:6380/2?ssl_ca_certs=/ca.pem"


def test_acl_file_lines_switch_default_off():
    lines = acl.acl_file_lines({"u": ("pw", acl.edge_rules("a"))})
    assert lines[0].startswith("user default off")
    assert "nopass" not in lines[0]  # protected mode would refuse all non-loopback clients
    assert lines[1].startswith("user u on >pw ")
    # kombu's priority queue names stay in (raw bytes: Redis splits ACL lines on spaces only)
    assert f"~{keys.edge_queue('a')}{acl.KOMBU_PRIORITY_SEP}*" in lines[1].split(" ")
    assert all(" " not in rule and "\n" not in rule for rule in acl.edge_rules("a"))


def test_tls_options_verify_by_default():
    assert tls.context("redis://h/0") is None
    ctx = tls.context("rediss://h:1/0")
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    loose = tls.context("rediss://h:1/0?ssl_cert_reqs=none")
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
    assert tls.celery_broker_ssl("rediss://h/0?ssl_ca_certs=/x")["ssl_ca_certs"] == "/x"
    assert tls.strip_query("rediss://u:p@h:1/0?ssl_ca_certs=/x") == "rediss://u:p@h:1/0"
    with pytest.raises(ValueError):
        tls.options("rediss://h/0?ssl_cert_reqs=maybe")


def test_enrollment_token_sources(tmp_path, monkeypatch):
    f = tmp_path / "tok"
    f.write_text("from-file\n")
    monkeypatch.setenv("RADICAL_EDGE_ENROLL_TOKEN", "from-env")
    assert enrollment.read_token("from-argv", str(f)) == "from-file"
    assert enrollment.read_token("from-argv", None) == "from-argv"
    assert enrollment.read_token(None, None) == "from-env"
    assert enrollment.via("redis://u:p@far:6379/0", "127.0.0.1:7000") == \
        "redis://u:p@127.0.0.1:7000/0"
    out = tmp_path / "secret"
    enrollment.write_secret(str(out), "x")
    assert out.stat().st_mode & 0o777 == 0o600


def test_child_delegation_replaces_the_parents_redis_url():
    from radical.edge.hpc.launch import enroll as child_enroll

    assert child_enroll.uses_edge_acl_user("redis://redge-edge-p:pw@h:1/0", "p")
    assert not child_enroll.uses_edge_acl_user("redis://h:1/0", "p")
    assert not child_enroll.uses_edge_acl_user("redis://redge-edge-q:pw@h:1/0", "p")
    spec = {"arguments": ["-n", "kid"], "environment": {"RADICAL_EDGE_REDIS_URL": "redis://x",
                                                        "A": "1"}}
    out = child_enroll.delegate(spec, "p", "tok", "https://bridge:8000")
    assert out["environment"] == {"A": "1", "RADICAL_EDGE_ENROLL_TOKEN": "tok",
                                  "RADICAL_EDGE_ENROLL_PARENT": "p"}
    assert out["arguments"] == ["-n", "kid", "--url", "https://bridge:8000"]
    assert "tok" not in out["arguments"]
