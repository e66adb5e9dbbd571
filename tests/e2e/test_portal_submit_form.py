"""Submitting with knowledge, in real Chromium on the single-node SLURM: the psij form offers
only executors the edge can use, queue and account pickers from queue_info with the queue's
limits beside duration and nodes, validation at the field while typing, and a refused
submission kept in the form (no Python reprs) until dismissed."""
from __future__ import annotations

import subprocess

import httpx
import pytest
from authed import AUTH

pytest.importorskip("psij")
pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


@pytest.fixture(scope="module")
def edge(module_edges):
    return module_edges.psij_edge("psij,queue_info,staging", prefix="sf")


def partitions() -> dict[str, str]:
    out = subprocess.run(["sinfo", "-h", "-o", "%R %l"], capture_output=True, text=True,
                         timeout=30).stdout.split("\n")
    return dict(line.split() for line in out if line.strip())


def open_form(portal, bridge_url, edge):
    page = portal.open(bridge_url, f"/e/{edge}/psij")
    form = page.locator("[data-form=submit]")
    form.locator("[data-field=executable]").wait_for()
    return page, form


def test_executors_queues_accounts_and_limits(portal, bridge_url, edge):
    page, form = open_form(portal, bridge_url, edge)
    info = httpx.get(f"{bridge_url}/{edge}/psij/executors", headers=AUTH, timeout=30).json()
    offered = form.locator("[data-field=executor] option").evaluate_all(
        "els => els.map(e => e.value)")
    assert offered == info["executors"] and "slurm" in offered
    assert "lsf" not in offered and "lsf" in info["unavailable"]  # no bsub here
    hint = form.locator("[data-testid=executor-hint]").inner_text()
    assert "lsf (no bsub)" in hint

    # partitions from queue_info, with their limits in the labels
    parts = partitions()
    queues = form.locator("[data-field=queue_name] option").evaluate_all(
        "els => els.map(e => e.value).filter(Boolean)")
    assert sorted(queues) == sorted(parts)
    form.locator("[data-field=queue_name]").select_option("debug")
    assert "at most 4h 00m" in form.locator("[data-testid=duration-hint]").inner_text()
    assert "1 node, 1 idle" in form.locator("[data-testid=node_count-hint]").inner_text()
    accounts = form.locator("[data-field=account] option").evaluate_all(
        "els => els.map(e => e.value).filter(Boolean)")
    assert "radical" in accounts

    # inline validation: too long for the queue, malformed, too many nodes
    duration = form.locator("[data-field=duration]")
    duration.fill("5:00:00")
    duration.blur()
    err = form.locator("[data-testid=duration-error]")
    assert err.inner_text() == "the queue allows at most 4h 00m"
    assert duration.get_attribute("aria-invalid") == "true"
    form.locator("[data-field=queue_name]").select_option("batch")  # a day: now it fits
    err.wait_for(state="hidden")
    duration.fill("ten minutes")
    duration.blur()
    assert "HH:MM:SS" in err.inner_text()
    duration.fill("0:10:00")
    err.wait_for(state="hidden")
    form.locator("[data-field=node_count]").fill("5")
    form.locator("[data-field=node_count]").blur()
    assert form.locator("[data-testid=node_count-error]").inner_text() == "the queue has 1 node"
    # submit with an invalid field sends nothing: the focus goes to the field
    jobs_before = page.locator("[data-testid=psij-jobs] tbody tr").count()
    page.click("[data-testid=submit-submit]")
    page.wait_for_function("() => document.activeElement.dataset.field === 'node_count'")
    assert page.locator("[data-testid=psij-jobs] tbody tr").count() == jobs_before
    form.locator("[data-field=node_count]").fill("1")
    form.locator("[data-field=node_count]").blur()
    portal.shot("psij-submit-form")

    # a valid SLURM job on the chosen queue and account goes through
    form.locator("[data-field=executor]").select_option("slurm")
    form.locator("[data-field=account]").select_option("radical")
    form.locator("[data-field=executable]").fill("/bin/true")
    form.locator("[data-field=arguments]").fill("")
    page.click("[data-testid=submit-submit]")
    form.locator("xpath=..").locator(".banner-ok").wait_for(timeout=60_000)


def test_refused_submission_stays_at_the_form_until_dismissed(portal, bridge_url, edge):
    page, form = open_form(portal, bridge_url, edge)
    form.locator("[data-field=executor]").select_option("local")
    form.locator("[data-field=executable]").fill("/no/such/program")
    page.click("[data-testid=submit-submit]")
    box = form.locator("[data-testid=submit-error]")
    box.locator("[role=alert]").wait_for()
    text = box.inner_text()
    assert "422" in text and "/no/such/program" in text and "does not exist" in text
    assert "PosixPath" not in text and "Traceback" not in text
    # shown at the field it is about, too
    assert "does not exist" in form.locator("[data-testid=executable-error]").inner_text()
    # in the form, not in a toast that fades away
    assert page.locator("[data-testid=toast]").count() == 0
    assert box.locator("[role=alert]").is_visible()
    portal.shot("psij-submit-error")
    box.locator("[data-testid=dismiss-error]").click()
    assert box.locator("[role=alert]").count() == 0
    # an empty executable is caught before anything is sent
    form.locator("[data-field=executable]").fill("")
    page.click("[data-testid=submit-submit]")
    assert form.locator("[data-testid=executable-error]").inner_text() == "an executable is required"


def test_my_work_lists_the_schedulers_batch_jobs(portal, bridge_url, edge):
    """Batch jobs submitted outside radical.edge (plain sbatch) show in My work, per edge."""
    out = subprocess.run(["sbatch", "--parsable", "-J", "outside-job", "-t", "5",
                          "--wrap", "sleep 120"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip().split(";")[0]
    try:
        page = portal.open(bridge_url, "/work")
        page.locator("[data-testid=batch-section] summary").click()
        row = page.locator(f'[data-testid=batch-rows] tr[data-id="{job_id}"][data-edge="{edge}"]')
        row.wait_for(timeout=30_000)
        cells = row.locator("td").all_inner_texts()
        assert cells[2] == "outside-job" and cells[4] in partitions()
        assert cells[6] != "—"  # submit time
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)
