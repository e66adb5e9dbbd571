"""The lucid page against the real plugin: a pilot started from the form becomes active on
local.localhost, a task submitted from the form runs there, and its state and stdout arrive
live (task_status notifications)."""
from __future__ import annotations

import pytest

pytest.importorskip("radical.pilot")

EDGE = "rp-site"


@pytest.fixture(scope="module")
def edge(module_edges, tmp_path_factory):
    root = tmp_path_factory.mktemp("portal-lucid")
    return module_edges(name=EDGE, plugins="lucid", env={"RADICAL_EDGE_LUCID_DIR": str(root)})


def test_pilot_and_task_from_the_page(portal, bridge_url, edge):
    page = portal.open(bridge_url, f"/e/{EDGE}/lucid")
    pilot_form = page.locator("[data-form=pilot]")
    pilot_form.locator("[data-field=cores]").wait_for()
    pilot_form.locator("[data-field=cores]").fill("1")
    page.click("[data-testid=pilot-submit]")
    pilots = page.locator("[data-testid=lucid-pilots]")
    pilots.locator(".badge[data-state=PMGR_ACTIVE]").wait_for(timeout=240_000)

    task_form = page.locator("[data-form=task]")
    task_form.locator("[data-field=executable]").fill("/bin/sh")
    task_form.locator("[data-field=arguments]").fill("-c 'echo hello from the portal'")
    page.click("[data-testid=task-submit]")
    tasks = page.locator("[data-testid=lucid-tasks]")
    tasks.locator(".badge[data-state=DONE]").wait_for(timeout=120_000)
    assert "hello from the portal" in tasks.inner_text()
    tasks.locator("tbody tr").first.click()
    page.locator("[data-testid=task-detail] [data-testid=stdout]").wait_for(timeout=30_000)
    assert "hello from the portal" in page.locator("[data-testid=task-detail]").inner_text()
    portal.shot("lucid")
