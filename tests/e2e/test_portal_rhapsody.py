"""The rhapsody page against the real plugin: the session comes up, a task submitted from
the form runs and its state and output appear live, a running task can be canceled."""
from __future__ import annotations

import pytest

pytest.importorskip("rhapsody")

EDGE = "ai"


@pytest.fixture(scope="module")
def rh_edge(module_edges):
    return module_edges(name=EDGE, plugins="rhapsody,sysinfo")


def open_rhapsody(portal, bridge_url):
    page = portal.open(bridge_url, f"/e/{EDGE}/rhapsody")
    page.locator("[data-testid=rh-session] .badge[data-state=ready]").wait_for(timeout=60_000)
    return page


def submit(page, executable, args):
    form = page.locator("[data-form=submit]")
    form.locator("[data-field=exec]").fill(executable)
    form.locator("[data-field=args]").fill(args)
    before = page.locator("[data-testid=rh-tasks] tbody tr").count()
    page.click("[data-testid=submit-submit]")
    page.wait_for_function("n => document.querySelectorAll('[data-testid=rh-tasks] tbody tr').length > n",
                           arg=before)
    return page.locator("[data-testid=rh-tasks] tbody tr").first.get_attribute("data-id")


def task_row(page, uid):
    return page.locator(f'[data-testid=rh-tasks] tr[data-id="{uid}"]')


def test_task_runs_and_its_output_appears(portal, bridge_url, rh_edge):
    page = open_rhapsody(portal, bridge_url)
    uid = submit(page, "/bin/sh", "-c 'echo hello from rhapsody; echo warn >&2; exit 3'")
    task_row(page, uid).locator(".badge[data-state=FAILED], .badge[data-state=DONE]").wait_for(timeout=30_000)
    detail = page.locator("[data-testid=task-detail]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=task-detail] [data-testid=stdout]')?"
        ".textContent.includes('hello from rhapsody')")
    assert detail.locator("[data-testid=stderr]").inner_text().strip() == "warn"
    assert "3" in task_row(page, uid).locator("td").nth(2).inner_text()

    uid2 = submit(page, "/bin/echo", "second task")
    task_row(page, uid2).locator(".badge[data-state=DONE]").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=task-detail] [data-testid=stdout]')?"
        ".textContent.includes('second task')")
    assert task_row(page, uid2).locator("td").nth(2).inner_text() == "0"
    # this page's own tasks are not marked as another session's (their notifications carry
    # this session's id)
    assert page.locator("[data-testid=rh-tasks] [data-testid=other-session]").count() == 0
    portal.shot("rhapsody")

    # both tasks are still listed after a reload (same tab, same session)
    page.reload()
    page.locator("[data-testid=rh-session] .badge[data-state=ready]").wait_for()
    task_row(page, uid).wait_for()
    task_row(page, uid2).locator(".badge[data-state=DONE]").wait_for()
    assert page.locator("[data-testid=rh-tasks] [data-testid=other-session]").count() == 0


def test_cancel_a_running_task(portal, bridge_url, rh_edge):
    page = open_rhapsody(portal, bridge_url)
    uid = submit(page, "/bin/sleep", "120")
    task_row(page, uid).locator(".badge[data-state=RUNNING]").wait_for(timeout=30_000)
    task_row(page, uid).locator("[data-testid=row-cancel]").click()
    page.click("[data-testid=confirm-ok]")
    task_row(page, uid).locator(".badge[data-state=CANCELED]").wait_for(timeout=30_000)
    assert task_row(page, uid).locator("[data-testid=row-cancel]").count() == 0
