"""Live everything, in real Chromium against real edges: rhapsody output streams while the
task runs; switching the rhapsody backend warns and keeps the earlier tasks; sysinfo is live
by default (remembered), with sparklines, load relative to the cores and each disk's
available space."""
from __future__ import annotations

import os
import uuid

import psutil
import pytest

pytest.importorskip("rhapsody")

PHONE = {"width": 400, "height": 860}


@pytest.fixture(scope="module")
def edge(module_edges):
    name = f"lv{uuid.uuid4().hex[:6]}"
    module_edges(name=name, plugins="rhapsody,sysinfo")
    return name


def open_rhapsody(portal, bridge_url, edge):
    page = portal.open(bridge_url, f"/e/{edge}/rhapsody")
    page.locator("[data-testid=rh-session] .badge[data-state=ready]").wait_for(timeout=60_000)
    return page


def submit(page, executable, args, backend=None):
    form = page.locator("[data-form=submit]")
    form.locator("[data-field=exec]").fill(executable)
    form.locator("[data-field=args]").fill(args)
    if backend:
        form.locator("[data-field=backends]").select_option(backend)
    page.click("[data-testid=submit-submit]")


def newest_uid(page, before: int) -> str:
    page.wait_for_function("n => document.querySelectorAll('[data-testid=rh-tasks] tbody tr')"
                           ".length > n", arg=before)
    return page.locator("[data-testid=rh-tasks] tbody tr").first.get_attribute("data-id")


def row(page, uid):
    return page.locator(f'[data-testid=rh-tasks] tr[data-id="{uid}"]')


def stdout_has(page, text: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "t => !!document.querySelector('[data-testid=task-detail] [data-testid=stdout]')"
        "?.textContent.includes(t)", arg=text, timeout=timeout)


def test_rhapsody_output_streams_while_the_task_runs(portal, bridge_url, edge):
    page = open_rhapsody(portal, bridge_url, edge)
    before = page.locator("[data-testid=rh-tasks] tbody tr").count()
    submit(page, "/bin/sh", "-c 'echo first line; sleep 4; echo second line'")
    uid = newest_uid(page, before)
    stdout_has(page, "first line")  # streamed ...
    assert row(page, uid).locator(".badge").get_attribute("data-state") == "RUNNING"  # ... live
    out = page.locator("[data-testid=task-detail] [data-testid=stdout]")
    assert "second line" not in out.inner_text()
    portal.shot("rhapsody-streaming")
    row(page, uid).locator(".badge[data-state=DONE]").wait_for(timeout=30_000)
    stdout_has(page, "second line")
    assert out.inner_text().count("first line") == 1  # nothing appended twice


def test_backend_switch_warns_and_keeps_the_earlier_tasks(portal, bridge_url, edge):
    page = open_rhapsody(portal, bridge_url, edge)
    before = page.locator("[data-testid=rh-tasks] tbody tr").count()
    submit(page, "/bin/echo", "on concurrent", backend="concurrent")
    first = newest_uid(page, before)
    row(page, first).locator(".badge[data-state=DONE]").wait_for(timeout=30_000)
    session = page.locator("[data-testid=rh-session]").inner_text()

    # switching warns; declining keeps everything as it was
    submit(page, "/bin/echo", "on noop", backend="noop")
    dialog = page.locator("dialog.modal[open]")
    dialog.wait_for()
    assert "noop" in dialog.inner_text() and "stay in the list" in dialog.inner_text()
    page.click("[data-testid=confirm-cancel]")
    dialog.wait_for(state="detached")
    assert page.locator("[data-testid=rh-session]").inner_text() == session

    count = page.locator("[data-testid=rh-tasks] tbody tr").count()
    submit(page, "/bin/echo", "on noop", backend="noop")
    page.click("[data-testid=confirm-ok]")
    page.locator("[data-testid=rh-session]", has_text="noop").wait_for(timeout=60_000)
    second = newest_uid(page, count)
    assert second != first
    row(page, second).locator(".badge[data-state=DONE]").wait_for(timeout=30_000)
    # the earlier task is still listed, with its backend
    assert row(page, first).locator("td").nth(3).inner_text() == "concurrent"
    assert row(page, second).locator("td").nth(3).inner_text() == "noop"


def test_sysinfo_is_live_by_default_with_history(portal, bridge_url, edge):
    page = portal.open(bridge_url, f"/e/{edge}/sysinfo")
    root = page.locator("[data-testid=sysinfo]")
    root.locator(".cards").wait_for()
    live = page.locator("[data-testid=auto-refresh]")
    assert live.is_checked()
    # without a click, new samples arrive and the sparklines grow
    page.wait_for_function("() => +document.querySelector('svg.spark')?.dataset.points >= 3",
                           timeout=30_000)
    cores = psutil.cpu_count() or os.cpu_count()
    assert f"of {cores} core" in root.locator("[data-testid=load]").inner_text()
    avail = root.locator(".card", has_text="Disks").locator("th", has_text="Available")
    assert avail.count() == 1
    assert root.locator("[data-testid=disk-available]").count() >= 1
    portal.shot("sysinfo-live")
    page.set_viewport_size(PHONE)
    portal.shot("sysinfo-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # turning it off is remembered (localStorage), across a reload
    live.uncheck()
    page.reload()
    root.locator(".cards").wait_for()
    assert not page.locator("[data-testid=auto-refresh]").is_checked()
    page.locator("[data-testid=auto-refresh]").check()
    page.reload()
    root.locator(".cards").wait_for()
    assert page.locator("[data-testid=auto-refresh]").is_checked()


def test_rhapsody_page_shows_the_users_tasks_from_other_sessions(portal, bridge_url, edge):
    """Tasks the same identity submitted from a script show on the rhapsody page, marked,
    with their end state and output read through their own session."""
    import httpx
    from authed import AUTH

    from radical.edge import services

    with httpx.Client(base_url=bridge_url, headers=AUTH, timeout=60) as http:
        sid = http.post(f"/{edge}/rhapsody/register_session",
                        json={"backends": ["concurrent"]}).json()["sid"]
        services.wait_until(lambda: http.get(f"/{edge}/rhapsody/session_status/{sid}")
                            .json()["status"] == "ready", 60, "the rhapsody session")
        r = http.post(f"/{edge}/rhapsody/submit/{sid}", json={"tasks": [
            {"executable": "/bin/echo", "arguments": ["from a script"]}]})
        assert r.status_code == 200, r.text
        uid = r.json()[0]["uid"]
    page = open_rhapsody(portal, bridge_url, edge)
    task = row(page, uid)
    task.wait_for(timeout=30_000)
    assert task.locator("[data-testid=other-session]").count() == 1
    task.locator(".badge[data-state=DONE]").wait_for(timeout=30_000)
    task.click()
    stdout_has(page, "from a script")
