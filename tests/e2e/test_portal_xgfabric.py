"""The xgfabric page against the real plugin: a resource config written in the page's editor
and saved, the built-in `test` workflow started from the page on two real worker edges, and
its progress bar, cluster table and execution log following the run live (workflow_status
notifications) to `completed`; a slow run stopped from the page, with what was released."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("rhapsody")

HOME, SITE_A, SITE_B = "xgf-portal", "xgf-pa", "xgf-pb"


@pytest.fixture(scope="module")
def sites(module_edges, bridge_url, tmp_path_factory):
    module_edges("xgfabric", name=HOME, env={
        "RADICAL_BRIDGE_URL": bridge_url,
        "RADICAL_EDGE_XGFABRIC_DIR": str(tmp_path_factory.mktemp("xgf-portal-configs"))})
    for name in (SITE_A, SITE_B):
        module_edges("rhapsody,staging", name=name)


def _open(portal, bridge_url):
    page = portal.open(bridge_url, f"/e/{HOME}/xgfabric")
    # the page module may still be loading: no editor yet is "not yet", not an error
    page.wait_for_function(
        "() => (document.querySelector('[data-testid=xgf-editor]')?.value || '').length > 0")
    return page, page.locator("[data-testid=xgf-editor]")


def _save(page, editor, cfg: dict) -> None:
    """Write `cfg` into the editor, save it, and wait until its picker selects it."""
    editor.fill(json.dumps(cfg, indent=2))
    page.click("[data-testid=xgf-save]")
    picker = "xgf-resource" if cfg.get("kind") == "resource" else "xgf-workflow"
    page.wait_for_function(f"() => document.querySelector('[data-testid={picker}]')?.value === "
                           f"{json.dumps(cfg['name'])}")


def _resource(bridge_url: str) -> dict:
    return {"kind": "resource", "name": "portal-sites", "bridge_url": bridge_url,
            "cluster_configs": {"site-a": {"edge": SITE_A, "type": "immediate"},
                                "site-b": {"edge": SITE_B, "type": "immediate"}}}


def test_run_the_test_workflow_from_the_page(portal, bridge_url, sites):
    page, editor = _open(portal, bridge_url)
    shown = json.loads(editor.input_value())
    assert shown["kind"] == "workflow" and shown["name"] == "test"  # the picker starts on test
    page.locator("[data-testid=xgf-status] .badge[data-state=idle]").wait_for()

    _save(page, editor, _resource(bridge_url))
    assert page.locator("[data-testid=xgf-workflow]").input_value() == "test"

    # errors stay beside the editor (not as toasts) until dismissed or the next try
    editor.fill("{not json")
    page.click("[data-testid=xgf-save]")
    err = page.locator("[data-testid=xgf-config-error] [role=alert]")
    err.wait_for()
    assert "Not saved:" in err.inner_text() and "not valid JSON" in err.inner_text()
    editor.fill(json.dumps({"kind": "nonsense", "name": "x"}))
    page.click("[data-testid=xgf-save]")  # the plugin refuses it
    page.wait_for_function("() => /\\b4\\d\\d: /.test(document.querySelector("
                           "'[data-testid=xgf-config-error]').textContent)")
    assert "Traceback" not in err.inner_text()
    assert page.locator(".toast[data-kind=error]").count() == 0
    err.locator("[data-testid=dismiss-error]").click()
    err.wait_for(state="detached")

    page.click("[data-testid=xgf-start]")
    status = page.locator("[data-testid=xgf-status]")
    status.locator(".badge[data-state=running]").wait_for()
    assert page.locator("[data-testid=xgf-stop]").is_enabled()
    status.locator(".badge[data-state=completed]").wait_for(timeout=90_000)
    assert page.locator("[data-testid=xgf-progress]").get_attribute("data-progress") == "100"
    assert "6 / 6" in status.inner_text()  # simulations
    clusters = page.locator("[data-testid=xgf-clusters]")
    for name in ("site-a", "site-b"):
        row = clusters.locator(f"tr[data-cluster={name}]")
        assert row.count() == 1 and "immediate" in row.inner_text()
    log = page.locator("[data-testid=xgf-log]").inner_text()
    assert "results of 6 simulation(s) and 2 model(s) gathered" in log
    assert "workflow completed" in log
    assert page.locator("[data-testid=xgf-start]").is_enabled()
    page.click("[data-testid=xgf-load]")  # the editor shows the workflow that ran
    page.wait_for_function(
        "() => document.querySelector('[data-testid=xgf-editor]')?.value.includes('stubs:simulate')")
    page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())")
    portal.shot("xgfabric")


def test_stop_from_the_page(portal, bridge_url, sites):
    page, editor = _open(portal, bridge_url)
    slow = json.loads(editor.input_value())
    slow.update(name="slow", simulation_task={**slow["simulation_task"], "kwargs": {
        "sim_id": "{sim_id}", "sensor_file": "{input}", "seconds": 60}})
    _save(page, editor, _resource(bridge_url))
    _save(page, editor, slow)
    page.click("[data-testid=xgf-start]")
    clusters = page.locator("[data-testid=xgf-clusters]")
    for name in ("site-a", "site-b"):  # a batch of two 60 s simulations on each
        clusters.locator(f"tr[data-cluster={name}][data-running='2']").wait_for(timeout=30_000)
    page.click("[data-testid=xgf-stop]")
    page.click("[data-testid=confirm-ok]")
    status = page.locator("[data-testid=xgf-status]")
    status.locator(".badge[data-state=failed]").wait_for(timeout=60_000)
    assert page.locator("[data-testid=xgf-phase]").inner_text() == "stopped"
    assert "stopped by stop_workflow" in page.locator("[data-testid=xgf-error]").inner_text()
    assert "4 task(s) canceled" in page.locator("[data-testid=xgf-cleanup]").inner_text()
    page.locator(".toast", has_text="Stopped: 4 task(s) canceled").wait_for()
