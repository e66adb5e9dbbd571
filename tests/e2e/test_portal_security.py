"""HTML injection: a hostile third-party plugin (`xss`, tests/fixtures/xss_plugin) puts
`<img onerror>` and `<script>` strings in its ui_config, its data, its notifications and its
error messages. The generic renderer must show all of it as text and run none of it."""
from __future__ import annotations

from pathlib import Path

#: the hostile plugin is loaded from its source folder by import path: no install needed
XSS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "xss_plugin"
XSS = {"plugins": "radical_edge_xss:XssPlugin", "env": {"PYTHONPATH": str(XSS_DIR)}}

PAYLOAD = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'
SCRIPT = "<script>window.__xss=(window.__xss||0)+1</script>"

NO_INJECTED_NODES = """() => {
  const imgs = [...document.querySelectorAll('img')].filter(i => i.getAttribute('src') === 'x');
  const scripts = [...document.querySelectorAll('script')].filter(s => s.textContent.includes('__xss'));
  const links = [...document.querySelectorAll('a[href]')].filter(a => /^\\s*javascript:/i.test(a.getAttribute('href')));
  return {imgs: imgs.length, scripts: scripts.length, links: links.length, ran: window.__xss || 0};
}"""


def assert_clean(page):
    assert page.evaluate(NO_INJECTED_NODES) == {"imgs": 0, "scripts": 0, "links": 0, "ran": 0}


def test_plugin_strings_are_shown_as_text(portal, bridge_url, make_edge):
    make_edge(name="hostile", **XSS)
    page = portal.open(bridge_url, "/e/hostile/xss")
    main = page.locator("#main")
    # every kind of monitor has loaded its (hostile) data
    page.locator("[data-monitor=rows] table.grid").wait_for()
    page.locator("[data-monitor=items] tbody tr").wait_for()
    page.locator("[data-monitor=info] dl.kv").wait_for()
    page.locator("[data-monitor=metrics] .card").first.wait_for()
    text = main.inner_text()
    assert f"Hostile {PAYLOAD}" in text            # title
    assert f"description {SCRIPT}" in text         # description
    assert f"Rows {PAYLOAD}" in text and f"Name {PAYLOAD}" in text  # monitor title, column
    assert text.count(PAYLOAD) >= 8
    # form: labels, defaults, options are text / values, never markup
    form = page.locator("[data-form=run]")
    assert form.locator("[data-field=label]").input_value() == PAYLOAD
    assert form.locator("[data-field=choice] option").all_inner_texts() == [PAYLOAD, SCRIPT]
    assert_clean(page)

    # submitting the form: the answer and the notification it triggers are rendered as text
    form.locator("[data-field=attrs-add], [data-testid=attrs-add]").first.click()
    form.locator(".kv-key").fill("k")
    form.locator(".kv-value").fill(SCRIPT)
    page.click("[data-testid=run-submit]")
    page.locator("[data-testid=run-result] pre.json").wait_for()
    assert SCRIPT in page.locator("[data-testid=run-result]").inner_text()
    page.locator(".event-log li", has_text="item_status").wait_for()
    assert "n-<img src=x onerror=" in page.locator(".event-log").inner_text()  # as JSON text
    page.locator("[data-monitor=items] tr", has_text=f"n-{PAYLOAD}").wait_for()
    page.locator("[data-monitor=items] tr", has_text=f"r-{PAYLOAD}").wait_for()
    assert_clean(page)

    # a row action whose error detail carries a traceback and HTML: a toast with the last
    # line only, as text
    page.locator("[data-monitor=rows] [data-testid=action-poke]").first.click()
    dialog = page.locator("dialog.modal[open]")
    assert PAYLOAD in dialog.inner_text()
    page.click("[data-testid=confirm-ok]")
    toast = page.locator("[data-testid=toast][data-kind=error]").last
    toast.wait_for()
    assert f"ValueError: bad {PAYLOAD}" in toast.inner_text()
    assert "Traceback" not in toast.inner_text() and "/srv/secret" not in toast.inner_text()
    portal.shot("generic-hostile-plugin")

    # the tree and the edge page show the plugin's icon and title as text too
    page.goto(f"{bridge_url}/#/e/hostile")
    page.locator("[data-testid=disconnect-edge]").wait_for()
    assert PAYLOAD in page.locator("#main").inner_text()
    assert PAYLOAD in page.locator("#tree").inner_text()
    assert_clean(page)
