"""Call outcome records: what `GET /calls/{id}` shows, and the SDK's reading of outcomes."""
from __future__ import annotations

import orjson

from radical.edge.app import call_record
from radical.edge.app.protocol import CallReply
from radical.edge.sdk.errors import outcome_from_body


def test_done_record_keeps_a_small_reply() -> None:
    reply = CallReply.build("c" * 32, 201, b'{"job_id":"j1"}', [["content-type", "application/json"]])
    rec = call_record.decode(call_record.encode(call_record.DONE, "e1", reply=reply,
                                                max_bytes=1024), "c" * 32)
    assert rec is not None
    assert rec["state"] == "done" and rec["status"] == 201 and rec["call_id"] == "c" * 32
    assert rec["reply"]["body"] == '{"job_id":"j1"}' and "note" not in rec


def test_done_record_of_a_big_reply_keeps_status_and_a_note() -> None:
    reply = CallReply.build("c" * 32, 200, b"x" * 5000)
    rec = call_record.decode(call_record.encode(call_record.DONE, "e1", reply=reply,
                                                max_bytes=1000), "c" * 32)
    assert rec["status"] == 200 and "reply" not in rec and "5000 bytes" in rec["note"]


def test_unreadable_records_are_none() -> None:
    assert call_record.decode(None, "x") is None
    assert call_record.decode(b"not json", "x") is None
    assert call_record.decode(orjson.dumps({"state": "exploded"}), "x") is None


def test_ttl_is_deadline_plus_retention_and_never_zero() -> None:
    assert call_record.ttl_ms(100.0, 600.0, now=90.0) == 610_000
    assert call_record.ttl_ms(100.0, 0.0, now=5000.0) == 1000


def test_sdk_reads_outcome_only_from_bridge_answers() -> None:
    assert outcome_from_body(b'{"detail":"x","outcome":"unknown","call_id":"ab"}') == \
        ("unknown", "ab")
    assert outcome_from_body(b'{"detail":"x","outcome":"not_run"}') == ("not_run", None)
    assert outcome_from_body(b'{"detail":"outcome"}') is None
    assert outcome_from_body(b'{"outcome":"maybe"}') is None
    assert outcome_from_body(b"<html>outcome</html>") is None
