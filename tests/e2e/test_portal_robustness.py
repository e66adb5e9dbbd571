"""The page outlives its bridge: terminate (behind a confirmation), restart on the same
port, and the page reconnects by itself and shows the topology as it is now. And a bridge
that wants a token gets one from a prompt, kept for the browser tab only."""
from __future__ import annotations

import uuid

import authed  # noqa: E402  (tests/integration: the session's admin token)
from radical.edge import services


def test_terminate_and_restart_the_bridge(portal, make_bridge, make_edge):
    port = services.free_port()
    first = make_bridge(port=port)
    url = first.extra["url"]
    before = f"b{uuid.uuid4().hex[:6]}"
    leaving = f"l{uuid.uuid4().hex[:6]}"
    make_edge(plugins="sysinfo", name=before)
    goner = make_edge(plugins="sysinfo", name=leaving)
    page = portal.open(url)
    page.locator(portal.edge_node(before)).wait_for()
    page.locator(portal.edge_node(leaving)).wait_for()

    # terminate asks first; cancel leaves the bridge alone
    page.click("[data-testid=terminate-bridge]")
    page.click("[data-testid=confirm-cancel]")
    page.wait_for_timeout(500)
    assert first.alive()
    page.click("[data-testid=terminate-bridge]")
    page.click("[data-testid=confirm-ok]")
    first.proc.wait(15)
    # a final state: "bridge stopped", not "reconnecting" forever
    page.wait_for_selector("#conn[data-status=stopped]")
    banner = page.locator("#bridge-banner[data-state=stopped]")
    assert "Bridge stopped" in banner.inner_text()
    assert page.locator(portal.edge_node(before)).count() == 1  # last known view kept
    assert page.locator("[data-testid=terminate-bridge]").is_disabled()
    portal.shot("bridge-stopped")

    # while the bridge is down an edge joins and one leaves (through Redis)
    after = f"a{uuid.uuid4().hex[:6]}"
    make_edge(plugins="sysinfo", name=after, wait=0)
    goner.stop()

    second = make_bridge(port=port)
    assert second.extra["url"] == url
    # stopped means stopped: the page does not reconnect behind the user's back (its
    # shortest retry is 0.5 s) ...
    page.wait_for_timeout(2500)
    assert page.locator("#conn").get_attribute("data-status") == "stopped"
    # ... until asked to
    page.click("[data-testid=bridge-retry]")
    portal.wait_connected(timeout=30_000)
    assert page.locator("#bridge-banner").is_hidden()
    assert page.locator("[data-testid=terminate-bridge]").is_enabled()
    page.locator(portal.edge_node(after)).wait_for(timeout=30_000)
    page.locator(portal.edge_node(before)).wait_for()
    page.locator(portal.edge_node(leaving)).wait_for(state="detached")
    assert "Traceback" not in page.content()


def test_token_prompt(portal, make_bridge, make_edge):
    token = f"tok-{uuid.uuid4().hex}"
    bridge = make_bridge(token=token)
    name = f"s{uuid.uuid4().hex[:6]}"
    make_edge(plugins="sysinfo", name=name)
    page = portal.open(bridge.extra["url"], connected=False)
    # the bridge answers 401: the page asks for the token
    page.locator("[data-testid=token-input]").wait_for()
    page.fill("[data-testid=token-input]", "wrong")
    page.click("[data-testid=token-ok]")
    # a wrong token is refused and asked for again
    page.locator("[data-testid=token-input]").wait_for()
    assert page.locator("dialog.modal[open]").inner_text().count("not accepted") == 1
    page.fill("[data-testid=token-input]", token)
    page.click("[data-testid=token-ok]")
    portal.wait_connected()
    page.locator(portal.edge_node(name)).wait_for()
    # plugin calls carry it too
    page.goto(f"{bridge.extra['url']}/#/e/{name}/sysinfo")
    page.locator("[data-testid=sysinfo] .cards").wait_for()
    # kept in sessionStorage (this tab), never in localStorage or a cookie
    assert page.evaluate("sessionStorage.getItem('radical_edge_token')") == token
    assert page.evaluate("Object.keys(localStorage).length") == 0
    assert page.context.cookies() == []
    # a new tab starts without it
    other = page.context.new_page()
    other.goto(bridge.extra["url"])
    other.locator("[data-testid=token-input]").wait_for()
    other.close()


def test_gap_after_retention_refreshes_the_page(portal, make_bridge, make_edge, bridge_url):
    """Away longer than the stream's retention: the bridge sends a `gap` event and the page
    re-reads the topology (an edge that joined meanwhile shows) instead of silently missing
    notifications."""

    port = services.free_port()
    first = make_bridge(port=port)
    url = first.extra["url"]
    name = f"g{uuid.uuid4().hex[:6]}"
    make_edge(plugins="echo", name=name, env={"RADICAL_EDGE_EVENTS_MAXLEN": "100"})
    warnings: list[str] = []
    page = portal.open(url)
    page.on("console", lambda msg: warnings.append(msg.text) if msg.type == "warning" else None)

    def burst(via: str, n: int) -> None:
        authed.post(f"{via}/{name}/echo/burst", json={"n": n, "tag": "gap"},
                   timeout=30).raise_for_status()

    burst(url, 3)  # the page now has a Last-Event-ID
    page.wait_for_timeout(1000)
    first.stop()
    page.wait_for_selector("#conn[data-status=reconnecting]")
    burst(bridge_url, 2000)  # through the session's bridge, while this one is down
    page.wait_for_timeout(2000)
    burst(bridge_url, 10)  # later writes trim what the live bridge has read
    page.wait_for_timeout(1000)
    make_bridge(port=port)
    portal.wait_connected(timeout=30_000)
    deadline = 30
    while deadline > 0 and not any("event stream gap" in w for w in warnings):
        page.wait_for_timeout(500)
        deadline -= 0.5
    assert any("event stream gap" in w for w in warnings), warnings
    page.locator(portal.edge_node(name)).wait_for()
    assert "Traceback" not in page.content()
