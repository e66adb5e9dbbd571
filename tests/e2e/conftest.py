"""Browser fixtures: the Debian `chromium` driven by PyPI `playwright` (no `playwright install`).

`browser` is one headless Chromium for the whole session; `page` is a fresh context (own
sessionStorage, so own token and plugin sessions) per test whose uncaught JavaScript errors
fail the test. `portal` opens the Edge Explorer and takes screenshots: into
`.run/screenshots/` by default, or into the directory named by `RADICAL_EDGE_SCREENSHOTS`
(`RADICAL_EDGE_SCREENSHOTS=docs/img` refreshes the images the README shows).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest


ROOT = Path(__file__).resolve().parents[2]

CHROMIUM = os.environ.get("RADICAL_EDGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 860}
#: axe-core, installed by `scripts/setup.sh --dev` (npm, tests/e2e/a11y/package.json)
AXE = Path(__file__).parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
#: the WCAG 2.1 A and AA rules (contrast, names, roles, keyboard)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
TIMEOUT_MS = 20_000


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def shot_dir() -> Path:
    raw = os.environ.get("RADICAL_EDGE_SCREENSHOTS")
    path = Path(raw) if raw else ROOT / ".run" / "screenshots"
    if not path.is_absolute():
        path = ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install "
                    "chromium; or set RADICAL_EDGE_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="browser tests need the playwright package "
                                          "(pip install radical.edge[dev])")
    pw = sync_api.sync_playwright().start()
    try:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    yield instance
    instance.close()
    pw.stop()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.js_errors = errors
    yield pg
    context.close()
    if errors:
        pytest.fail(f"uncaught JavaScript errors in the portal: {errors}")


class Portal:
    """Open pages of the Edge Explorer and take screenshots."""

    def __init__(self, page) -> None:
        self.page = page
        self.logged_in: set[str] = set()

    def login(self, base_url: str) -> None:
        """Log this tab in as a user would: through a single-use login link (the bridges of
        the test session are closed; the portal trades the link's ticket for a tab token)."""
        import httpx

        base = base_url.rstrip("/")
        if base in self.logged_in:
            return
        r = httpx.post(f"{base}/bridge/login-ticket", timeout=10,
                       headers={"Authorization": f"Bearer {os.environ['RADICAL_EDGE_TOKEN']}"})
        r.raise_for_status()
        self.page.goto(r.json()["url"])
        self.page.wait_for_function("() => !!sessionStorage.getItem('radical_edge_token')")
        self.logged_in.add(base)

    def open(self, base_url: str, route: str = "", connected: bool = True):
        if connected:
            self.login(base_url)
        self.page.goto(f"{base_url.rstrip('/')}/{('#' + route) if route else ''}")
        if connected:
            self.wait_connected()
        return self.page

    def wait_connected(self, timeout: float = TIMEOUT_MS):
        self.page.wait_for_selector("#conn[data-status=connected]", timeout=timeout)

    def edge_node(self, name: str) -> str:
        return f'#tree li.tree-edge[data-edge="{name}"]'

    def a11y_violations(self) -> list[str]:
        """axe-core's WCAG 2.1 AA violations of what the page shows now, one line each.

        axe is evaluated through the DevTools protocol, which the portal's CSP does not
        govern: nothing is added to the page's own sources."""
        if not AXE.exists():
            pytest.skip(f"accessibility checks need axe-core at {AXE} (scripts/setup.sh --dev)")
        if not self.page.evaluate("() => !!window.axe"):
            self.page.evaluate(AXE.read_text())
        found = self.page.evaluate(
            """async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags},
                resultTypes: ['violations']})).violations.map(v => v.id + ' (' + v.impact + '): '
                + v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' — ' + n.failureSummary
                .replace(/\\s+/g, ' ')).join(' | '))""", AXE_TAGS)
        return list(found)

    def shot(self, name: str, full_page: bool = True) -> Path:
        path = shot_dir() / f"{name}.png"
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.wait_for_timeout(150)  # let fonts and the last layout settle
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def portal(page) -> Portal:
    return Portal(page)
