"""Swagger UI (/docs) and ReDoc (/redoc) in a real Chromium: they render the merged document
with a real edge's plugin routes, fetch nothing from outside the bridge and break no
Content-Security-Policy rule; without a token the page asks for one."""
from __future__ import annotations

import os

import pytest

TEMPLATED = "/{edge}/sysinfo/metrics/{sid}"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def docs_edge(module_edges):
    return module_edges(name="apidocs", plugins="sysinfo,staging")


@pytest.fixture
def watched(page, bridge_url):
    """The page, recording the URLs it fetched, the ones the CSP stopped, and what the
    console says about the CSP."""
    page.fetched, page.blocked, page.csp = [], [], []
    page.on("requestfinished", lambda req: page.fetched.append(req.url))
    page.on("requestfailed", lambda req: page.blocked.append(req.url)
            if "BLOCKED_BY_CSP" in (req.failure or "") else None)
    page.on("console", lambda msg: page.csp.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    return page


def assert_local(page, bridge_url: str) -> None:
    """Nothing was fetched from elsewhere. ReDoc's bundle always shows a footer logo from
    its vendor's CDN: the page's CSP refuses it (and only it)."""
    foreign = [u for u in page.fetched if not u.startswith((bridge_url, "data:", "blob:"))]
    assert not foreign, foreign
    assert all(u == REDOC_LOGO for u in page.blocked), page.blocked
    assert all(REDOC_LOGO in text for text in page.csp), page.csp


def test_swagger_ui_shows_plugin_routes(portal, watched, bridge_url, docs_edge):
    portal.login(bridge_url)  # a token in this tab, as after the portal's login
    watched.goto(f"{bridge_url}/docs")
    watched.wait_for_selector("#ui[data-loaded=true]")
    op = watched.locator(f'.opblock-summary-path[data-path="{TEMPLATED}"]')
    op.wait_for()
    op.click()  # expand: the edge parameter offers the online edge
    watched.locator(".opblock.is-open select").first.wait_for()
    assert "apidocs" in watched.locator(".opblock.is-open select").first.inner_text()
    assert_local(watched, bridge_url)
    portal.shot("apidocs-swagger")


def test_redoc_shows_plugin_routes(portal, watched, bridge_url, docs_edge):
    portal.login(bridge_url)
    watched.goto(f"{bridge_url}/redoc")
    watched.wait_for_selector("#ui[data-loaded=true]")
    watched.wait_for_function(
        "p => document.body.innerText.includes(p)", arg=TEMPLATED.replace("{sid}", ""))
    assert "staging" in watched.locator("#ui").inner_text()
    assert_local(watched, bridge_url)


def test_without_a_token_the_page_asks_for_one(watched, bridge_url, docs_edge):
    watched.goto(f"{bridge_url}/docs")
    form = watched.locator("#token-form")
    form.wait_for(state="visible")
    watched.fill("#token", os.environ["RADICAL_EDGE_TOKEN"])
    watched.click("#token-form button")
    watched.wait_for_selector(f'.opblock-summary-path[data-path="{TEMPLATED}"]')
    assert_local(watched, bridge_url)
