"""Errors shown once, where they happened (issue 15 item 3): a refused submission of a form
rendered from a plugin's ui_config (the original-style `counter` plugin) and of the lucid
forms stays in that form, at the field it names, until dismissed -- and is not repeated as a
toast far from the form."""
from __future__ import annotations

import uuid

import pytest


def no_toast(page) -> None:
    """Toasts appear synchronously with the in-form error (same task): none may exist."""
    assert page.locator("[data-testid=toast]").count() == 0, page.locator("#toasts").inner_text()


def test_generic_form_refusal_is_shown_once_at_the_form(portal, bridge_url, module_edges):
    name = f"err{uuid.uuid4().hex[:5]}"
    module_edges(plugins="counter", name=name)
    page = portal.open(bridge_url, f"/e/{name}/counter")
    form = page.locator("[data-form=add]")
    amount = form.locator("[data-field=amount]")
    amount.wait_for()
    amount.fill("")  # null: the plugin answers 400 "amount must be an integer"
    page.click("[data-testid=add-submit]")
    box = form.locator("[data-testid=add-error] [role=alert]")
    box.wait_for()
    assert "400" in box.inner_text() and "amount must be an integer" in box.inner_text()
    assert form.locator("[data-testid=amount-error]").inner_text() == "amount must be an integer"
    no_toast(page)
    form.locator("[data-testid=dismiss-error]").click()
    assert box.count() == 0

    amount.fill("2")  # and a good one goes through, its answer beside the form
    page.click("[data-testid=add-submit]")
    page.locator("[data-testid=add-result] pre.json").wait_for()
    assert form.locator("[data-testid=add-error] [role=alert]").count() == 0


def test_lucid_refusals_are_shown_once_at_their_form(portal, bridge_url, module_edges, tmp_path):
    pytest.importorskip("radical.pilot")
    name = f"lerr{uuid.uuid4().hex[:5]}"
    module_edges(plugins="lucid", name=name, env={"RADICAL_EDGE_LUCID_DIR": str(tmp_path)})
    page = portal.open(bridge_url, f"/e/{name}/lucid")
    form = page.locator("[data-form=task]")
    form.locator("[data-field=executable]").wait_for()
    # an empty executable is caught at the field, nothing is sent
    form.locator("[data-field=executable]").fill("")
    page.click("[data-testid=task-submit]")
    assert form.locator("[data-testid=executable-error]").inner_text() == "an executable is required"
    no_toast(page)
    # a task before any pilot: the plugin refuses (409), the task form says so, once
    form.locator("[data-field=executable]").fill("/bin/true")
    page.click("[data-testid=task-submit]")
    box = form.locator("[data-testid=task-error] [role=alert]")
    box.wait_for()
    assert "409" in box.inner_text() and "submit a pilot first" in box.inner_text()
    assert "Task not submitted" in box.inner_text()
    no_toast(page)
    assert page.locator("[data-form=pilot] [data-testid=pilot-error] [role=alert]").count() == 0
    form.locator("[data-testid=dismiss-error]").click()
    assert box.count() == 0

    # a pilot on an unknown resource: shown at the resource field, and not at 'runtime'
    # because the message says "RuntimeError" (fields are named by whole words only)
    pilot = page.locator("[data-form=pilot]")
    pilot.locator("[data-field=resource]").fill("nowhere.at_all")
    page.click("[data-testid=pilot-submit]")
    pilot.locator("[data-testid=pilot-error] [role=alert]").wait_for(timeout=60_000)
    assert "Resource site 'nowhere' is unknown" in pilot.locator("[data-testid=resource-error]").inner_text()
    assert pilot.locator("[data-testid=runtime-error]").is_hidden()
    assert pilot.locator("[data-testid=cores-error]").is_hidden()
    no_toast(page)
    pilot.locator("[data-testid=dismiss-error]").click()

    # a batch queue that is no plain name: refused (422) and shown at the queue field, so the
    # form did send it
    pilot.locator("[data-field=resource]").fill("local.localhost")
    pilot.locator("[data-field=queue]").fill("debug; rm -rf /")
    page.click("[data-testid=pilot-submit]")
    pilot.locator("[data-testid=pilot-error] [role=alert]").wait_for(timeout=60_000)
    assert "422" in pilot.locator("[data-testid=pilot-error] [role=alert]").inner_text()
    assert "queue" in pilot.locator("[data-testid=queue-error]").inner_text()
    assert pilot.locator("[data-testid=project-error]").is_hidden()
    no_toast(page)


def test_a_monitor_that_cannot_load_says_so_once_in_its_place(portal, bridge_url, module_edges, tmp_path):
    """queue_info on a host whose scheduler is broken: its commands fail (they stand first on
    the edge's PATH and exit 1 the way SLURM's do when the controller is down)."""
    for tool in ("sinfo", "squeue", "sacctmgr", "sacct", "scontrol"):
        script = tmp_path / tool
        script.write_text(f"#!/bin/sh\necho '{tool}: error: Unable to contact slurm controller' >&2\nexit 1\n")
        script.chmod(0o755)
    name = f"qerr{uuid.uuid4().hex[:5]}"
    module_edges(plugins="queue_info", name=name, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    page = portal.open(bridge_url, f"/e/{name}/queue_info")
    err = page.locator("[data-monitor=partitions] .error-box")
    err.wait_for(timeout=30_000)
    text = err.inner_text()
    assert "Unable to contact slurm controller" in text
    assert "Traceback" not in text and "PosixPath" not in text
    page.locator("[data-monitor=my_jobs] .error-box").wait_for()
    no_toast(page)


def test_long_messages_wrap_on_a_phone(portal, page, bridge_url, module_edges, tmp_path):
    """Server messages quote paths: a long one wraps inside its box at 400 px instead of
    making the page scroll sideways (the form's box, the field's error, a listing's error)."""
    pytest.importorskip("psij")
    name = f"wrap{uuid.uuid4().hex[:5]}"
    module_edges(plugins="psij,staging", name=name, env={
        "RADICAL_EDGE_PSIJ_DIR": str(tmp_path), "RADICAL_EDGE_STAGING_ROOTS": str(tmp_path)})
    page.set_viewport_size({"width": 400, "height": 820})
    overflow = "document.documentElement.scrollWidth - window.innerWidth"
    portal.open(bridge_url, f"/e/{name}/psij")
    form = page.locator("[data-form=submit]")
    form.locator("[data-field=executable]").wait_for()
    form.locator("[data-field=executor]").select_option("local")
    long_path = "/no/such/" + "averyverylongdirectoryname" * 5 + "/program"
    form.locator("[data-field=executable]").fill(long_path)
    page.click("[data-testid=submit-submit]")
    form.locator("[data-testid=submit-error] [role=alert]").wait_for()
    assert long_path in form.locator("[data-testid=executable-error]").inner_text()
    assert page.evaluate(overflow) <= 0
    assert portal.a11y_violations() == []

    portal.open(bridge_url, f"/e/{name}/staging")
    page.locator("[data-testid=staging-listing] table, [data-testid=staging-listing] .empty").first.wait_for()
    page.locator("[data-testid=staging-path]").fill("/etc/" + "x" * 200)
    page.press("[data-testid=staging-path]", "Enter")
    page.locator("[data-testid=staging-listing] .error-box", has_text="outside").wait_for()
    assert page.evaluate(overflow) <= 0
