"""Which reason a departed edge gets from what was said and seen (app/departures.py)."""
from __future__ import annotations

import time

from radical.edge.app import departures
from radical.edge.app.departures import Departures


def test_silence_is_lost_and_a_word_is_believed():
    d = Departures()
    d.left("a", {"role": "login", "host": "h1"}, heartbeat_ttl=6)
    assert d.view()["a"]["reason"] == "lost" and "6 s" in d.view()["a"]["detail"]
    assert d.view()["a"]["host"] == "h1"
    d.said("b", "stopped")
    d.left("b", {})
    assert d.view()["b"]["reason"] == "stopped"


def test_disconnect_outranks_the_stop_it_causes_and_late_words_upgrade():
    d = Departures()
    d.said("a", "disconnected")
    d.said("a", "stopped")  # the edge's own leave: ping, caused by the disconnect
    d.left("a", {})
    assert d.view()["a"]["reason"] == "disconnected"
    d.left("b", {})  # a poll saw it gone before its leave: ping arrived
    assert d.said("b", "stopped") is True
    assert d.view()["b"]["reason"] == "stopped"
    assert d.said("b", "lost") is False  # a weaker word changes nothing


def test_stale_words_and_walltime():
    d = Departures()
    d._words["a"] = ("disconnected", time.time() - departures.WORD_SECONDS - 1)
    d.left("a", {})
    assert d.view()["a"]["reason"] == "lost"
    d.left("w", {"walltime_end": time.time() + 10})
    assert d.view()["w"]["reason"] == "walltime"
    d.left("x", {"walltime_end": time.time() + 3 * departures.WALLTIME_SLACK})
    assert d.view()["x"]["reason"] == "lost"  # cancelled or killed long before its end
    d.left("y", {"walltime_end": time.time() + 600, "accepting": False})  # was draining
    assert d.view()["y"]["reason"] == "walltime"
    d.returned("w")
    assert "w" not in d.view()
