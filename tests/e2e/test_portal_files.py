"""Files from a job's row, in real Chromium: a psij job writes into its working directory;
its row in the job table opens the staging browser there, and its result downloads."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

pytest.importorskip("psij")


@pytest.fixture(scope="module")
def edge(module_edges, tmp_path_factory):
    root = Path(os.path.realpath(tmp_path_factory.mktemp("files-root")))
    name = f"fj{uuid.uuid4().hex[:6]}"
    module_edges(name=name, plugins="psij,staging",
                 env={"RADICAL_EDGE_PSIJ_DIR": str(tmp_path_factory.mktemp("files-psij")),
                      "RADICAL_EDGE_STAGING_ROOTS": str(root)})
    return name, root


def test_job_row_opens_its_directory_and_the_result_downloads(portal, bridge_url, edge,
                                                              tmp_path):
    name, root = edge
    workdir = root / "run1"
    workdir.mkdir()
    page = portal.open(bridge_url, f"/e/{name}/psij")
    form = page.locator("[data-form=submit]")
    form.locator("[data-field=executable]").fill("/bin/sh")
    form.locator("[data-field=arguments]").fill("-c 'echo 42 > result.txt'")
    form.locator("[data-field=directory]").fill(str(workdir))
    form.locator("[data-field=executor]").select_option("local")
    page.click("[data-testid=submit-submit]")
    job_row = page.locator("[data-testid=psij-jobs] tbody tr").first
    job_row.locator(".badge[data-state=COMPLETED]").wait_for(timeout=30_000)
    job_row.locator("[data-testid=row-files]").click()
    # the staging browser at the job's working directory, listing what the job wrote
    result = page.locator("[data-testid=staging-listing] tr[data-name='result.txt']")
    result.wait_for()
    assert page.locator("[data-testid=staging-path]").input_value() == str(workdir)
    with page.expect_download() as info:
        result.locator("[data-testid=staging-download]").click()
    target = tmp_path / "result.txt"
    info.value.save_as(target)
    assert target.read_text() == "42\n"


def test_psij_page_shows_the_users_jobs_from_other_sessions(portal, bridge_url, edge):
    """A job submitted elsewhere (a script, another tab) by the same identity shows on the
    edge's psij page, marked, with its state and output streamed through its own session."""
    import httpx
    from authed import AUTH

    name, _root = edge
    with httpx.Client(base_url=bridge_url, headers=AUTH, timeout=60) as http:
        sid = http.post(f"/{name}/psij/register_session", json={}).json()["sid"]
        r = http.post(f"/{name}/psij/submit/{sid}", json={"job_spec": {
            "executable": "/bin/sh", "arguments": ["-c", "echo from a script; sleep 3; echo done"]}})
        assert r.status_code == 200, r.text
        job_id = r.json()["job_id"]
    page = portal.open(bridge_url, f"/e/{name}/psij")
    job_row = page.locator(f'[data-testid=psij-jobs] tr[data-id="{job_id}"]')
    job_row.wait_for(timeout=30_000)
    assert job_row.locator("[data-testid=other-session]").count() == 1
    job_row.click()
    page.wait_for_function(
        "() => !!document.querySelector('[data-testid=job-detail] [data-testid=stdout]')"
        "?.textContent.includes('from a script')", timeout=30_000)
    job_row.locator(".badge[data-state=COMPLETED]").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=job-detail] [data-testid=stdout]')?"
        ".textContent.includes('done')", timeout=30_000)
