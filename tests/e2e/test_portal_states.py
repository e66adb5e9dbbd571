"""Honest states (issue 15 item 4): a visible banner while the bridge is down with submits
held back and a retry; page modules that failed to load meanwhile load on reconnect; a lost
edge stays greyed with why it left, its page says so, and it rebuilds itself on return.
(Terminate's final "bridge stopped" state: test_portal_robustness.py.)"""
from __future__ import annotations

import threading
import uuid

import psutil
import pytest

from radical.edge import services

SUBMITS = "#main button[type=submit]"


def test_bridge_down_banner_held_submits_and_module_retry(portal, make_bridge, make_edge, tmp_path):
    port = services.free_port()
    first = make_bridge(port=port)
    url = first.extra["url"]
    name = f"st{uuid.uuid4().hex[:6]}"
    make_edge(plugins="sysinfo,psij,staging", name=name, env={"RADICAL_EDGE_PSIJ_DIR": str(tmp_path)})
    page = portal.open(url, f"/e/{name}/staging")  # its module loads now, its page is used below
    page.locator("[data-testid=staging-listing] table").wait_for()
    page.evaluate(f"location.hash = '#/e/{name}/psij'")
    page.locator(SUBMITS).first.wait_for()
    assert page.locator("#bridge-banner").is_hidden()
    n_submits = page.locator(SUBMITS).count()
    assert n_submits >= 2 and all(b.is_enabled() for b in page.locator(SUBMITS).all())
    # a running job: its cancel buttons (row and detail) need the bridge as much as a submit
    form = page.locator("[data-form=submit]")
    form.locator("[data-field=executable]").fill("/bin/sleep")
    form.locator("[data-field=arguments]").fill("60")
    form.locator("[data-field=executor]").select_option("local")
    page.click("[data-testid=submit-submit]")
    cancels = "[data-testid=row-cancel], [data-testid=detail-cancel]"
    page.locator("[data-testid=detail-cancel]").wait_for()
    assert all(b.is_enabled() for b in page.locator(cancels).all())

    first.stop()
    banner = page.locator("#bridge-banner[data-state=reconnecting]")
    banner.wait_for()
    assert "Bridge unreachable" in banner.inner_text() and "submitting is disabled" in banner.inner_text()
    page.wait_for_function(f"() => [...document.querySelectorAll('{SUBMITS}')].every(b => b.disabled)")
    assert page.locator(cancels).count() == 2 and all(b.is_disabled() for b in page.locator(cancels).all())
    assert page.locator("[data-testid=bridge-retry]").is_enabled()
    portal.shot("bridge-down")
    # actions outside forms that change state are held too (here: staging's upload, new folder)
    actions = "[data-testid=staging-upload], [data-testid=staging-mkdir]"
    page.evaluate(f"location.hash = '#/e/{name}/staging'")
    page.locator("[data-testid=staging-mkdir]").wait_for()
    page.wait_for_function(f"() => [...document.querySelectorAll('{actions}')].every(b => b.disabled)")
    # a page whose module is not loaded yet cannot load now, and says why
    page.evaluate(f"location.hash = '#/e/{name}/sysinfo'")
    page.locator("#main .error-box").wait_for()
    assert "bridge is back" in page.locator("#main .error-box").inner_text()

    make_bridge(port=port)  # the page's own back-off finds it (Retry: test_portal_robustness)
    portal.wait_connected(timeout=30_000)
    page.locator("[data-testid=sysinfo] .cards").wait_for()  # the module loaded after all
    assert page.locator("#main .error-box").count() == 0
    assert page.locator("#bridge-banner").is_hidden()
    page.evaluate(f"location.hash = '#/e/{name}/staging'")
    page.locator("[data-testid=staging-listing] table").wait_for()
    page.wait_for_function(f"() => [...document.querySelectorAll('{actions}')].every(b => !b.disabled)")
    page.evaluate(f"location.hash = '#/e/{name}/psij'")
    page.locator(SUBMITS).first.wait_for()
    page.wait_for_function(f"() => [...document.querySelectorAll('{SUBMITS}')].every(b => !b.disabled)")
    assert "Traceback" not in page.content()


@pytest.mark.parametrize("answered", [True, False], ids=["answered", "lost"])
def test_a_submit_in_flight_at_an_outage_stays_held_until_the_bridge_is_back(portal, make_bridge, make_edge,
                                                                            tmp_path, answered):
    """A submit that ends while the bridge is down must not re-enable its button; the
    bridge's return does. Answered: the stopping bridge still passes the edge's answer on in
    its grace period, after the event stream is gone. Lost: the edge stays paused past that
    grace period, the bridge dies without the answer and the form says the outcome is unknown."""
    port = services.free_port()
    first = make_bridge(port=port)
    url = first.extra["url"]
    name = f"fl{uuid.uuid4().hex[:6]}"
    edge = make_edge(plugins="psij", name=name, env={"RADICAL_EDGE_PSIJ_DIR": str(tmp_path)})
    page = portal.open(url, f"/e/{name}/psij")
    button = page.locator("[data-testid=submit-submit]")
    button.wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=submit-submit]').disabled")
    page.locator("[data-form=submit] [data-field=executor]").select_option("local")
    busy = "() => document.querySelector('[data-form=submit]').classList.contains('busy')"
    # the edge, paused, keeps the submit in flight at the bridge
    procs = [psutil.Process(edge.pid)]
    procs += procs[0].children(recursive=True)
    for p in procs:
        p.suspend()
    stopping = threading.Thread(target=first.stop)
    try:
        button.click()
        page.wait_for_function(busy)
        stopping.start()  # SIGTERM: the event stream ends, in-flight calls get a grace period
        page.locator("#bridge-banner[data-state=reconnecting]").wait_for()
        if not answered:
            stopping.join()  # the bridge is gone, the answer with it
    finally:
        for p in procs:
            p.resume()
    page.wait_for_function(f"() => !({busy})()")
    if answered:
        page.locator("[data-form=submit] ~ .form-result .banner-ok").wait_for()
    else:
        # the bridge answers for the call it was cut off from: taken back out of the edge's
        # queue (503 not_run), or already with the edge (502 unknown, with the call's id)
        text = page.locator("[data-testid=submit-error] [role=alert]").inner_text()
        assert ("it was not done" in text and "did not run" in text) or (
            "may or may not have been done" in text and "/calls/" in text), text
        assert "Internal Server Error" not in text
    assert page.locator("#bridge-banner").is_visible()
    assert button.is_disabled(), "the finished submit re-enabled its button while the bridge is down"
    stopping.join()
    assert button.is_disabled()
    make_bridge(port=port)
    portal.wait_connected(timeout=30_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=submit-submit]').disabled")


def test_lost_edge_stays_greyed_with_its_reason_and_returns(portal, bridge_url, make_edge):
    name = f"lost{uuid.uuid4().hex[:6]}"
    other = f"stop{uuid.uuid4().hex[:6]}"
    svc = make_edge(plugins="sysinfo", name=name)
    make_edge(plugins="sysinfo", name=other).stop()
    page = portal.open(bridge_url, f"/e/{name}/sysinfo")
    page.locator("[data-testid=sysinfo] .cards").wait_for()
    page.evaluate("document.querySelector('.plugin-page').dataset.before = 'yes'")

    svc.kill9()  # no goodbye: the bridge sees its heartbeat stop
    node = page.locator(f'{portal.edge_node(name)}[data-departed=lost]')
    node.wait_for(timeout=30_000)
    assert "left: lost" in node.inner_text()
    gone = page.locator("[data-testid=edge-gone]")
    gone.wait_for()
    assert gone.get_attribute("data-reason") == "lost"
    assert "heartbeat" in gone.inner_text() and "no longer live" in gone.inner_text()
    assert "stale" in page.locator(".plugin-page").get_attribute("class")
    portal.shot("edge-lost")

    # back under the same name: the page rebuilds itself from fresh state, no reload
    make_edge(plugins="sysinfo", name=name)
    page.locator(".plugin-page:not([data-before])").wait_for(timeout=30_000)
    page.locator("[data-testid=sysinfo] .cards").wait_for()
    assert page.locator("[data-testid=edge-gone]:visible").count() == 0
    assert "stale" not in page.locator(".plugin-page").get_attribute("class")
    assert page.locator(f"{portal.edge_node(name)}:not([data-departed])").count() == 1

    # the edge page and a plugin page of an edge that stopped say so too
    page.evaluate(f"location.hash = '#/e/{other}'")
    stopped = page.locator("[data-testid=edge-gone][data-reason=stopped]")
    stopped.wait_for()
    assert "shut down" in stopped.inner_text()
    page.evaluate(f"location.hash = '#/e/{other}/sysinfo'")
    page.locator("#main [data-testid=edge-gone][data-reason=stopped]:visible").wait_for()

    # a departed edge stays until dismissed
    gone_node = page.locator(f'{portal.edge_node(other)}[data-departed=stopped]')
    gone_node.locator("[data-testid=dismiss-departed]").click()
    gone_node.wait_for(state="detached")


def test_a_launched_edge_that_fails_shows_its_stderr_and_log(portal, bridge_url, make_edge, tmp_path):
    pytest.importorskip("psij")
    parent = f"lp{uuid.uuid4().hex[:6]}"
    make_edge(plugins="psij", name=parent,
              env={"RADICAL_EDGE_PSIJ_DIR": str(tmp_path / "psij"),
                   "RADICAL_EDGE_LOG_DIR": str(tmp_path / "logs")})
    page = portal.open(bridge_url, f"/e/{parent}/psij")
    form = page.locator("[data-form=launch]")
    form.locator("[data-field=name]").wait_for()
    child = f"{parent}.bad"
    form.locator("[data-field=name]").fill(child)
    form.locator("[data-field=executor]").select_option("local")
    # the wrapper starts logging, then finds no interpreter: the edge never comes up
    form.locator("[data-field=extra]").fill("--python /nonexistent/python3")
    page.click("[data-testid=launch-submit]")
    status = page.locator("[data-testid=launch-status]")
    status.locator("text=before the edge joined").wait_for(timeout=60_000)
    stderr = status.locator("[data-testid=launch-stderr]")
    stderr.wait_for()
    assert f"edge '{child}': logging to" in stderr.inner_text()
    log = status.locator("[data-testid=launch-log]")
    assert "no usable Python interpreter (tried '/nonexistent/python3')" in log.inner_text()
    portal.shot("launch-failed")
