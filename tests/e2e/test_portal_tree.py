"""The shell: the live tree (join, leave, nesting by dotted names, role, liveness) and
disconnecting an edge behind a confirmation."""
from __future__ import annotations

import uuid

from radical.edge import services


def test_tree_shows_edges_and_follows_joins_and_leaves(portal, bridge_url, make_edge):
    site = f"site{uuid.uuid4().hex[:4]}"
    make_edge(plugins="sysinfo,echo", name=site)
    page = portal.open(bridge_url)
    # the edge that was there before the page loaded, with its role and liveness
    node = page.locator(portal.edge_node(site))
    node.wait_for()
    assert node.get_attribute("data-role") == "login"
    assert node.locator(".role").first.inner_text().lower() == "login"
    assert node.locator(".live").first.get_attribute("data-live") == "online"
    assert sorted(node.locator(":scope > ul > li.tree-plugin").evaluate_all(
        "els => els.map(e => e.dataset.plugin)")) == ["echo", "sysinfo"]

    # an edge joining while the page is open: nested under its dotted parent, no reload
    child = make_edge(plugins="sysinfo", name=f"{site}.1")
    nested = page.locator(f'{portal.edge_node(site)} li[data-edge="{site}.1"]')
    nested.wait_for()
    assert page.locator(f'{portal.edge_node(site)} li[data-edge="{site}.1"] li[data-plugin=sysinfo]').count() == 1
    page.locator(f'#main tr[data-edge-row="{site}.1"]').wait_for()
    portal.shot("overview")

    # ... and leaving again: greyed in place with why, until dismissed
    child.stop()
    page.locator(f'{portal.edge_node(site)} li[data-edge="{site}.1"][data-departed=stopped]').wait_for()
    assert "left: stopped" in nested.inner_text()
    page.locator(f'#main tr[data-edge-row="{site}.1"]').wait_for(state="detached")
    nested.locator("[data-testid=dismiss-departed]").click()
    nested.wait_for(state="detached")
    assert page.locator(portal.edge_node(site)).count() == 1

    # the edge page: host, role, plugins
    page.locator(f'{portal.edge_node(site)} > .node-row a.node-link').click()
    page.wait_for_selector("[data-testid=disconnect-edge]")
    assert f"#/e/{site}" in page.url
    assert "sysinfo" in page.locator("#main").inner_text()


def test_disconnect_asks_first_then_removes_the_edge(portal, bridge_url, make_edge):
    name = f"gone{uuid.uuid4().hex[:4]}"
    svc = make_edge(plugins="sysinfo", name=name)
    page = portal.open(bridge_url, f"/e/{name}")
    page.locator(portal.edge_node(name)).wait_for()

    # cancel: nothing happens
    page.click("[data-testid=disconnect-edge]")
    dialog = page.locator("dialog.modal[open]")
    dialog.wait_for()
    assert name in dialog.inner_text()
    portal.shot("disconnect-confirm")
    page.click("[data-testid=confirm-cancel]")
    dialog.wait_for(state="detached")
    page.wait_for_timeout(500)
    assert name in services.list_edges(bridge_url)
    assert svc.alive()

    # confirm: the edge shuts down and leaves the tree and the page
    page.click("[data-testid=disconnect-edge]")
    page.click("[data-testid=confirm-ok]")
    page.locator(f'{portal.edge_node(name)}[data-departed=disconnected]').wait_for(timeout=30_000)
    assert page.locator("[data-testid=edge-gone]").get_attribute("data-reason") == "disconnected"
    svc.proc.wait(30)
    assert name not in services.list_edges(bridge_url)
