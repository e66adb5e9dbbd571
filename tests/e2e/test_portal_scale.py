"""Scale (issue 15 item 7): a tree of 200+ edges stays usable: natural order, big groups
collapsed, full names where they differ, a filter, and one toast per burst of joins/leaves.

Two edges are real processes; 200 more are announced in the real Redis exactly as an edge
announces itself (its own announcement, renamed, under the announcement key with a TTL, in
the edge set, then a ping on the topology channel): 200 Celery workers do not fit on the
test machine, and the bridge and the portal cannot tell the difference.
"""
from __future__ import annotations

import uuid

import orjson
import pytest
import redis

from radical.edge import services
from radical.edge.app import keys

TTL_MS = 300_000  # outlives the test; removed at its end


class Announcements:
    """Edge announcements written straight into Redis (see the module docstring)."""

    def __init__(self, redis_url: str, template: dict) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=10)
        self.template = template
        self.names: list[str] = []

    def announce(self, names: list[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            info = {**self.template, "name": name, "host": f"{name}.example.org"}
            pipe.set(keys.edge_info(name), orjson.dumps(info), px=TTL_MS)
            pipe.sadd(keys.EDGES, name)
        pipe.publish(keys.TOPOLOGY_CHANNEL, f"join:{names[0]}")
        pipe.execute()
        self.names += names

    def withdraw(self, names: list[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.delete(keys.edge_info(name))
            pipe.publish(keys.TOPOLOGY_CHANNEL, f"leave:{name}")
        pipe.execute()
        self.names = [n for n in self.names if n not in names]

    def close(self) -> None:
        if self.names:
            self.withdraw(list(self.names))
        self.client.close()


@pytest.fixture
def fleet(redis_url, bridge_url, make_edge):
    tag = uuid.uuid4().hex[:4]
    real = [f"ana{tag}", f"ana{tag}.login"]
    for name in real:
        make_edge(plugins="sysinfo", name=name)
    blob = redis.Redis.from_url(redis_url, socket_timeout=10).get(keys.edge_info(real[0]))
    ann = Announcements(redis_url, orjson.loads(blob))
    yield tag, real, ann
    ann.close()


def test_two_hundred_edges(portal, bridge_url, fleet):
    tag, real, ann = fleet
    frontier = [f"frontier{tag}.{i}" for i in range(1, 121)]               # one big group
    aurora = [f"aurora{tag}.compute.x4000c{i // 8}s{i % 8}b0n0" for i in range(60)]  # long, alike
    polaris = [f"polaris{tag}-login-{chr(97 + i)}" for i in range(20)]      # flat
    fake = frontier + aurora + polaris
    assert len(fake) == 200

    page = portal.open(bridge_url)
    page.locator(portal.edge_node(real[1])).wait_for()
    page.evaluate("""() => { window.toastLog = [];
        new MutationObserver((ms) => ms.forEach((m) => m.addedNodes.forEach((n) =>
            n.dataset && n.dataset.testid === 'toast' && window.toastLog.push(n.innerText))))
        .observe(document.getElementById('toasts'), {childList: true}); }""")

    ann.announce(fake)
    services.wait_until(lambda: len(set(fake) & set(services.list_edges(bridge_url))) == 200,
                        30, "the bridge to list the 200 announced edges")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=edge-count]')?.textContent) >= 202")
    total = int(page.locator("[data-testid=edge-count]").inner_text())
    # the flat ones are all there, the big groups closed: a screenful, not 200 rows
    assert page.locator(f'#tree li[data-edge^="polaris{tag}-"]').count() == 20
    assert page.locator(f'#tree li[data-edge*="{tag}"]').count() == 22

    # one toast for the burst, not 200
    page.wait_for_function("() => window.toastLog.some((t) => t.includes('200 edges joined'))")
    joined = [t for t in page.evaluate("window.toastLog") if "joined" in t]
    assert len(joined) == 1, joined

    # the 120-edge group starts collapsed; opened, it is in natural order (2 before 10)
    group = page.locator(f'#tree li[data-group="frontier{tag}"]')
    assert group.get_attribute("aria-expanded") == "false"
    assert group.locator("li[data-edge]").count() == 0
    assert "(120)" in group.inner_text()
    group.locator(":scope > .node-row .twisty").click()
    page.locator(f'#tree li[data-edge="frontier{tag}.120"]').wait_for()
    order = group.locator(":scope > ul > li[data-edge]").evaluate_all("els => els.map(e => e.dataset.edge)")
    assert order == frontier
    # one row per edge: the plugins of one of many siblings start folded away
    assert group.locator("li[data-plugin]").count() == 0
    first = page.locator(f'#tree li[data-edge="frontier{tag}.1"]')
    assert first.get_attribute("aria-expanded") == "false"
    first.locator(":scope > .node-row .twisty").click()
    first.locator("li[data-plugin=sysinfo]").wait_for()

    # the 60 alike names: each shows what differs from its group, nothing is cut off
    sub = page.locator(f'#tree li[data-group="aurora{tag}.compute"]')
    if sub.get_attribute("aria-expanded") == "false":
        sub.locator(":scope > .node-row .twisty").click()
    labels = sub.locator("a.node-link").evaluate_all(
        "els => els.map(e => [e.textContent, e.scrollWidth <= e.clientWidth + 1, e.getAttribute('aria-label')])")
    assert len(labels) == 60 and len({t for t, _, _ in labels}) == 60
    assert all(fits for _, fits, _ in labels), [t for t, fits, _ in labels if not fits]
    assert {full for _, _, full in labels} == set(aurora)
    assert labels[0][0] == ".x4000c0s0b0n0"

    # the filter: by name fragment, across groups, with a count; cleared, all is back
    box = page.locator("#tree-filter")
    box.fill("c1s")
    page.wait_for_function("() => document.querySelectorAll('#tree li[data-edge]').length === 8")
    shown = page.locator("#tree li[data-edge]").evaluate_all("els => els.map(e => e.dataset.edge)")
    assert sorted(shown) == sorted(n for n in aurora if "c1s" in n)
    assert page.locator("[data-testid=edge-count]").inner_text() == f"8 / {total}"
    box.fill(f"polaris{tag}-login-t")
    page.wait_for_function("() => document.querySelectorAll('#tree li[data-edge]').length === 1")
    box.fill("no-such-edge-anywhere")
    page.locator("#tree .tree-empty").wait_for()
    box.fill("")
    page.wait_for_function(f"() => document.querySelectorAll('#tree li[data-edge*=\"{tag}\"]').length === 202")
    page.locator(f'#tree li[data-edge="aurora{tag}.compute.x4000c0s0b0n0"]').scroll_into_view_if_needed()
    portal.shot("tree-200", full_page=False)
    assert portal.a11y_violations() == []

    # a burst of leaves: one toast, with the reason they share
    ann.withdraw(polaris)
    page.wait_for_function("() => window.toastLog.some((t) => t.includes('20 edges left'))")
    left = [t for t in page.evaluate("window.toastLog") if " left" in t]
    assert len(left) == 1 and "(stopped)" in left[0], left
    assert page.locator(f'#tree li[data-departed="stopped"][data-edge*="{tag}"]').count() == 20
    page.click("[data-testid=dismiss-all-departed]")
    page.wait_for_function("() => !document.querySelector('#tree li[data-departed]')")
    assert page.locator(f'#tree li[data-edge="frontier{tag}.1"]').count() == 1
