"""Any screen (issue 15 item 1): phone, narrow and desktop widths without sideways
scrolling, readable titles, the tree in a drawer on narrow screens, WCAG AA as axe-core
checks it, a skip link, arrow keys in the tree, a title per view, Cancel focused in
destructive dialogs and Terminate kept in an admin area."""
from __future__ import annotations

import uuid

import pytest

#: a phone (portrait), the narrowest tablet layout and the desktop of the other tests
WIDTHS = {"phone": {"width": 400, "height": 820}, "narrow": {"width": 800, "height": 900},
          "desktop": {"width": 1280, "height": 860}}


@pytest.fixture(scope="module")
def screen_edge(module_edges) -> str:
    name = f"scr{uuid.uuid4().hex[:5]}"
    module_edges(plugins="sysinfo,psij", name=name)
    module_edges(plugins="sysinfo", name=f"{name}.2")
    module_edges(plugins="sysinfo", name=f"{name}.10")
    return name


SIDEBAR_SHOWN = """() => {
    const side = document.getElementById('sidebar');
    return side.getBoundingClientRect().right > 0 && getComputedStyle(side).visibility !== 'hidden';
}"""


def drawer_settles(page, shown: bool) -> None:
    """The drawer slides (a short transition): wait until it is fully in or out."""
    page.wait_for_function(f"() => ({SIDEBAR_SHOWN})() === {'true' if shown else 'false'}")


def tidy(page) -> None:
    """Dismiss the departed edges other tests of this session left (clean screenshots)."""
    page.evaluate("() => { const b = document.querySelector('[data-testid=dismiss-all-departed]'); if (b) b.click(); }")


def layout_facts(page) -> dict:
    return page.evaluate("""() => {
        const h2 = document.querySelector('#main h2');
        const r = h2 ? h2.getBoundingClientRect() : null;
        return {
            overflow: document.documentElement.scrollWidth - window.innerWidth,
            titleTop: r ? r.top : null, titleLeft: r ? r.left : null,
            titleWidth: r ? r.width : 0,
            sidebarOnScreen: (%s)(),
        };
    }""" % SIDEBAR_SHOWN)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_width_fits_reads_and_passes_axe(portal, page, bridge_url, screen_edge, width):
    page.set_viewport_size(WIDTHS[width])
    narrow = WIDTHS[width]["width"] <= 900
    routes = {"overview": "", "edge": f"/e/{screen_edge}", "sysinfo": f"/e/{screen_edge}/sysinfo",
              "psij": f"/e/{screen_edge}/psij"}
    for view, route in routes.items():
        portal.open(bridge_url, route)
        page.locator("#main h2").first.wait_for()
        tidy(page)
        if view == "sysinfo":
            page.locator("[data-testid=sysinfo] .cards").wait_for()
        if view == "psij":
            page.locator("#main form").first.wait_for()
        facts = layout_facts(page)
        assert facts["overflow"] <= 0, f"{view} at {width}: scrolls sideways by {facts['overflow']} px"
        # the title is at the top of the content, beside (desktop) or instead of the tree
        assert facts["titleTop"] < 160, f"{view} at {width}: title {facts['titleTop']} px down"
        assert facts["titleWidth"] > 0
        assert facts["sidebarOnScreen"] is (not narrow), f"{view} at {width}"
        violations = portal.a11y_violations()
        assert violations == [], f"{view} at {width}:\n" + "\n".join(violations)
        if width == "phone" and view in ("overview", "sysinfo", "psij"):
            portal.shot(f"{view}-phone")  # the desktop ones are the other tests' shots

    if narrow:  # the drawer: opened from the top bar, closed by navigating or Escape
        toggle = page.locator("#drawer-toggle")
        assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
        toggle.click()
        page.locator(f'#tree li[data-edge="{screen_edge}"]').wait_for(state="visible")
        assert toggle.get_attribute("aria-expanded") == "true"
        drawer_settles(page, True)
        if width == "phone":
            portal.shot("tree-drawer-phone")
        assert portal.a11y_violations() == []
        page.locator(f'#tree li[data-edge="{screen_edge}"] > .node-row a').click()
        page.wait_for_selector("[data-testid=disconnect-edge]")
        drawer_settles(page, False)
        toggle.click()
        page.locator("#tree-filter").wait_for(state="visible")
        page.keyboard.press("Escape")
        page.wait_for_function("() => !document.body.classList.contains('drawer-open')")
        assert page.evaluate("document.activeElement.id") == "drawer-toggle"
    else:
        assert page.locator("#drawer-toggle").is_hidden()


def test_keyboard_skip_link_tree_arrows_and_titles(portal, page, bridge_url, screen_edge):
    portal.open(bridge_url)
    page.locator(portal.edge_node(screen_edge)).wait_for()
    assert page.title() == "Bridge · Edge Explorer"
    # the first Tab stop is the skip link; it takes the focus to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "skip-link"
    assert page.locator("#skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # the tree is one Tab stop; arrows move inside it (natural order: .2 before .10). The
    # filter keeps other tests' edges of this session out of the way.
    page.locator("#tree-filter").fill(screen_edge)
    page.wait_for_function("() => document.querySelectorAll('#tree li[data-edge]').length === 3")
    page.keyboard.press("Tab")
    focused = lambda: page.evaluate("document.activeElement.dataset.nav")  # noqa: E731
    assert focused() == "bridge"
    page.keyboard.press("ArrowDown")
    assert focused() == screen_edge
    order = []
    for _ in range(4):
        page.keyboard.press("ArrowDown")
        order.append(focused())
    assert order[:2] == [f"{screen_edge}/psij", f"{screen_edge}/sysinfo"]
    assert order[2:] == [f"{screen_edge}.2", f"{screen_edge}/sysinfo".replace(screen_edge, f"{screen_edge}.2")]
    # Left on a child goes to its parent; Left on an open node closes it, Right opens it
    page.keyboard.press("ArrowLeft")
    assert focused() == f"{screen_edge}.2"
    page.keyboard.press("ArrowLeft")
    assert focused() == f"{screen_edge}.2"
    node = page.locator(f'#tree li[data-edge="{screen_edge}.2"]')
    assert node.get_attribute("aria-expanded") == "false"
    page.keyboard.press("ArrowRight")
    assert node.get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert focused() == screen_edge
    page.keyboard.press("End")
    assert focused() == f"{screen_edge}.10/sysinfo"
    page.keyboard.press("Home")
    assert focused() == "bridge"
    # Enter follows the link; every view has its own title
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=disconnect-edge]")
    assert page.title() == f"{screen_edge} · Edge Explorer"
    page.goto(f"{bridge_url}/#/e/{screen_edge}/sysinfo")
    page.locator("[data-testid=sysinfo]").wait_for()
    assert page.title() == f"sysinfo · {screen_edge} · Edge Explorer"


def test_destructive_dialogs_focus_cancel_and_terminate_is_apart(portal, page, bridge_url, screen_edge):
    page_ = portal.open(bridge_url)
    # Terminate lives in the Administration card, the last one on the bridge page
    admin = page_.locator("#main section.card").last
    assert "Administration" in admin.inner_text()
    assert admin.locator("[data-testid=terminate-bridge]").count() == 1
    assert page_.locator("#main .page-head [data-testid=terminate-bridge]").count() == 0
    admin.locator("[data-testid=terminate-bridge]").click()
    dialog = page_.locator("dialog.modal[open]")
    dialog.wait_for()
    page_.wait_for_function("() => document.activeElement.dataset.testid === 'confirm-cancel'")
    assert dialog.get_attribute("role") == "alertdialog"
    assert portal.a11y_violations() == []
    page_.keyboard.press("Enter")  # a stray Enter cancels
    dialog.wait_for(state="detached")
    assert page_.locator("#conn").get_attribute("data-status") == "connected"

    page_.goto(f"{bridge_url}/#/e/{screen_edge}")
    page_.click("[data-testid=disconnect-edge]")
    page_.wait_for_function("() => document.activeElement.dataset.testid === 'confirm-cancel'")
    page_.keyboard.press("Space")
    page_.locator("dialog.modal[open]").wait_for(state="detached")
    assert page_.locator(portal.edge_node(screen_edge)).get_attribute("data-departed") is None


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_other_plugin_pages_pass_axe(portal, page, bridge_url, module_edges, width):
    """The pages of rhapsody, staging and of plugins rendered from their ui_config (echo: none,
    counter: a form, a monitor and notifications)."""
    name = f"ax{width[0]}{uuid.uuid4().hex[:5]}"
    module_edges(name=name, plugins="rhapsody,staging,echo,counter")
    page.set_viewport_size(WIDTHS[width])
    ready = {"rhapsody": "[data-testid=rh-session] .badge[data-state=ready]",
             "staging": "[data-testid=staging-listing] tr[data-name]", "echo": "#main .card",
             "counter": "[data-monitor=value] .kv"}
    for plugin, selector in ready.items():
        portal.open(bridge_url, f"/e/{name}/{plugin}")
        page.locator(selector).first.wait_for(timeout=60_000)
        facts = layout_facts(page)
        assert facts["overflow"] <= 0, f"{plugin} at {width}: scrolls sideways by {facts['overflow']} px"
        violations = portal.a11y_violations()
        assert violations == [], f"{plugin} at {width}:\n" + "\n".join(violations)


#: what each page shows once it has loaded, and what it needs to run at all
PLUGIN_PAGES = {
    "queue_info": ("[data-monitor=partitions] table.grid", None),
    "lucid": ("[data-form=task] [data-field=executable]", "radical.pilot"),
    "xgfabric": ("[data-testid=xgf-status] .badge[data-state]", "rhapsody"),
}


@pytest.fixture(scope="module")
def plugin_pages_edges(module_edges, bridge_url, tmp_path_factory):
    """The edge of each page, started when a test first asks for it: queue_info's on the
    SLURM cluster, lucid's and xgfabric's on an edge of their own (no SLURM needed)."""
    edges: dict[str, str] = {}
    root = tmp_path_factory.mktemp("axe-pages")

    def edge(plugin: str, request) -> str:
        key = "queue_info" if plugin == "queue_info" else "rest"
        if key not in edges:
            name = f"axp{uuid.uuid4().hex[:5]}"
            if key == "queue_info":
                request.getfixturevalue("slurm_cluster")
                module_edges(plugins="queue_info", name=name)
            else:
                module_edges(plugins="lucid,xgfabric", name=name, env={
                    "RADICAL_BRIDGE_URL": bridge_url, "RADICAL_EDGE_LUCID_DIR": str(root / "lucid"),
                    "RADICAL_EDGE_XGFABRIC_DIR": str(root / "xgf")})
            edges[key] = name
        return edges[key]
    return edge


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("plugin", [pytest.param("queue_info", marks=pytest.mark.slurm), "lucid", "xgfabric"])
def test_queue_info_lucid_and_xgfabric_pages_pass_axe(portal, page, bridge_url, plugin_pages_edges,
                                                      request, plugin, width):
    ready, needs = PLUGIN_PAGES[plugin]
    if needs:
        pytest.importorskip(needs)
    edge = plugin_pages_edges(plugin, request)
    page.set_viewport_size(WIDTHS[width])
    portal.open(bridge_url, f"/e/{edge}/{plugin}")
    page.locator(ready).first.wait_for(timeout=60_000)
    tidy(page)
    facts = layout_facts(page)
    assert facts["overflow"] <= 0, f"{plugin} at {width}: scrolls sideways by {facts['overflow']} px"
    assert facts["titleTop"] < 160, f"{plugin} at {width}: title {facts['titleTop']} px down"
    violations = portal.a11y_violations()
    assert violations == [], f"{plugin} at {width}:\n" + "\n".join(violations)
