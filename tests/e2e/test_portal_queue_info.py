"""The queue_info page on the single-node SLURM cluster: allocation card, partitions, my
jobs with cancel (behind a confirmation), allocations."""
from __future__ import annotations

import subprocess

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


@pytest.fixture(scope="module")
def slurm_job(slurm_cluster):
    out = subprocess.run(["sbatch", "--parsable", "-J", "portal-demo", "-t", "5",
                          "--wrap", "sleep 240"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"sbatch failed on the test cluster: {out.stderr.strip()}"
    job_id = out.stdout.strip().split(";")[0]
    yield job_id
    subprocess.run(["scancel", job_id], capture_output=True, timeout=30)


def test_partitions_jobs_and_cancel(portal, bridge_url, make_edge, slurm_job):
    make_edge(plugins="queue_info,sysinfo", name="cluster")
    page = portal.open(bridge_url, "/e/cluster/queue_info")
    parts = page.locator("[data-monitor=partitions] table.grid")
    parts.wait_for(timeout=30_000)
    names = parts.locator("tbody tr td:first-child").all_inner_texts()
    sinfo = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True).stdout.split()
    assert sorted(names) == sorted(set(sinfo))
    assert "Not inside a batch job" in page.locator("[data-monitor=allocation]").inner_text()
    page.locator("[data-monitor=allocations]").wait_for()

    jobs = page.locator("[data-monitor=my_jobs]")
    row = jobs.locator(f'tr[data-key="{slurm_job}"]')
    row.wait_for(timeout=30_000)
    assert "portal-demo" in row.inner_text()
    # a partition's jobs open below the table: by keyboard (Tab stop, Enter) or click
    debug = parts.locator("tbody tr", has_text="debug").first
    debug.focus()
    page.keyboard.press("Enter")
    page.locator("[data-monitor=partitions] .monitor-sub h4", has_text="debug").wait_for()
    debug.click()
    page.locator("[data-monitor=partitions] .monitor-sub h4").wait_for()
    portal.shot("queue_info")

    row.locator("[data-testid=action-cancel]").click()
    dialog = page.locator("dialog.modal[open]")
    assert f"Cancel job {slurm_job}?" in dialog.inner_text()
    page.click("[data-testid=confirm-ok]")
    page.locator("[data-testid=toast][data-kind=success]").first.wait_for()

    def state() -> str:
        res = subprocess.run(["squeue", "-h", "-j", slurm_job, "-o", "%T"],
                             capture_output=True, text=True, timeout=10)
        return res.stdout.strip()

    page.wait_for_timeout(500)
    for _ in range(40):
        if state() in ("", "CANCELLED", "COMPLETING"):
            break
        page.wait_for_timeout(250)
    assert state() in ("", "CANCELLED", "COMPLETING")
    page.click("[data-testid=refresh]")
    row.wait_for(state="detached", timeout=30_000)
