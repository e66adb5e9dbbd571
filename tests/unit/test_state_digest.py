"""The state digest an edge writes beside task notifications (app/state_digest.py): what
the notifier encodes is what the bridge decodes, and whatever an edge sends instead never
raises anything but ValueError, nor lets an unchecked value through."""
from __future__ import annotations

import orjson
import pytest

from radical.edge.app import state_digest as sd


def test_round_trip_keeps_uid_state_and_exit_code() -> None:
    raw = sd.encode("e1", "rhapsody", "task_status_batch",
                    [("t.1", "DONE", 0), ("t.2", "FAILED", 3), ("t.3", "RUNNING", None),
                     ("t.4", "FAILED", "-9")])
    got = sd.decode(raw)
    assert (got.edge, got.plugin, got.topic, got.skipped) == ("e1", "rhapsody",
                                                             "task_status_batch", 0)
    assert got.states == [("t.1", "DONE", "0"), ("t.2", "FAILED", "3"),
                          ("t.3", "RUNNING", ""), ("t.4", "FAILED", "-9")]
    assert sd.decode(raw.decode()) == got  # str as well as bytes


def test_lengths_are_bounded_like_the_index_always_did() -> None:
    raw = sd.encode("e", "p", "task_status", [("u", "S" * 100, "7" * 100)])
    (uid, state, code), = sd.decode(raw).states
    assert (uid, len(state), len(code)) == ("u", sd.MAX_STATE, sd.MAX_CODE)


@pytest.mark.parametrize("raw, why", [
    (b"", "not JSON"),
    (b"[1,2", "not JSON"),
    (b"{}", "not a list"),
    (b'["e","p","t"]', "not a list"),
    (b'["e","p","t",[],1]', "not a list"),
    (b'["e","p","t",{}]', "not a list"),
    (b'[1,"p","t",[]]', "not a list"),
    (b'["e",null,"t",[]]', "not a list"),
    (b'["","p","t",[]]', "edge is empty"),
    (b'["e","p","' + b"x" * 129 + b'",[]]', "topic is empty or too long"),
    (b'"just a string"', "not a list"),
])
def test_a_malformed_digest_is_a_value_error_saying_why(raw: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        sd.decode(raw)


def test_malformed_items_are_left_out_and_counted() -> None:
    good = ["t.ok", "DONE", 0]
    bad = [
        ["t.a", "DONE"],                 # too short
        ["t.a", "DONE", 0, 1],           # too long
        {"uid": "t.a", "state": "DONE"},  # not a list
        [7, "DONE", 0],                  # uid not text
        ["", "DONE", 0],                 # empty uid
        ["u" * (sd.MAX_UID + 1), "DONE", 0],  # a cut uid would name another task
        ["t.a", None, 0],                # no state
        ["t.a", "", 0],                  # empty state
        ["t.a", ["DONE"], 0],            # state not text
        ["t.a", "DONE", True],           # true is no exit code
        ["t.a", "DONE", {"code": 1}],    # nor is an object
        "t.a",
        None,
    ]
    got = sd.decode(orjson.dumps(["e", "p", "task_status_batch", [bad[0], good, *bad[1:]]]))
    assert got.states == [("t.ok", "DONE", "0")]
    assert got.skipped == len(bad)


def test_with_states_is_a_plain_dict_to_encoders_and_hosts() -> None:
    data = sd.WithStates({"tasks": [{"uid": "a"}], "sid": "s"}, [("a", "DONE", 0)])
    assert data == {"tasks": [{"uid": "a"}], "sid": "s"}
    assert orjson.loads(orjson.dumps(data)) == data
    assert data.states == [("a", "DONE", 0)]
