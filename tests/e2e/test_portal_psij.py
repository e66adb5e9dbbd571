"""The psij page against the real plugin: a job submitted from the form runs and its state
and output appear live; cancel; launching a new edge as a batch job (through an SSH tunnel,
and on SLURM where there is one) and seeing it join the tree."""
from __future__ import annotations

import pytest
from slurm_fixture import conf_path

from radical.edge import services

pytest.importorskip("psij")
pytest.importorskip("asyncssh")


PARENT = "hpc"


@pytest.fixture(scope="module")
def parent(module_edges, tmp_path_factory, test_sshd):  # noqa: F811
    psij_dir = tmp_path_factory.mktemp("portal-psij")
    env = {"RADICAL_EDGE_PSIJ_DIR": str(psij_dir), "SLURM_CONF": conf_path(),
           **test_sshd.env(tunnel_dir=psij_dir / "tunnels")}
    return module_edges(name=PARENT, plugins="psij,sysinfo", env=env)


def open_psij(portal, bridge_url):
    page = portal.open(bridge_url, f"/e/{PARENT}/psij")
    page.locator("[data-form=submit] [data-field=executable]").wait_for()
    return page


def submit(page, executable, arguments, executor="local"):
    form = page.locator("[data-form=submit]")
    form.locator("[data-field=executable]").fill(executable)
    form.locator("[data-field=arguments]").fill(arguments)
    form.locator("[data-field=executor]").select_option(executor)
    page.click("[data-testid=submit-submit]")
    banner = form.locator("xpath=..").locator(".banner-ok")
    banner.wait_for()
    return banner.inner_text().split("Submitted job ")[1].split(" ")[0].rstrip(".")


def row(page, job_id):
    return page.locator(f'[data-testid=psij-jobs] tr[data-id="{job_id}"]')


def test_job_runs_with_live_state_and_streamed_output(portal, bridge_url, parent):
    page = open_psij(portal, bridge_url)
    job_id = submit(page, "/bin/sh",
                    "-c 'echo first line; sleep 3; echo second line; echo to-stderr >&2'")
    # the new job is selected: its state goes ACTIVE and the first line streams in while
    # the job still runs
    row(page, job_id).locator(".badge[data-state=ACTIVE]").wait_for(timeout=30_000)
    stdout = page.locator("[data-testid=job-detail] [data-testid=stdout]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=job-detail] [data-testid=stdout]')?"
        ".textContent.includes('first line')", timeout=30_000)
    assert "second line" not in stdout.inner_text()
    assert row(page, job_id).locator(".badge").get_attribute("data-state") == "ACTIVE"
    # then it completes: state from the job_status notification, the rest of the output
    row(page, job_id).locator(".badge[data-state=COMPLETED]").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=job-detail] [data-testid=stdout]')?"
        ".textContent.includes('second line')")
    assert stdout.inner_text().count("first line") == 1  # offsets: nothing read twice
    stderr = page.locator("[data-testid=job-detail] [data-testid=stderr]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=job-detail] [data-testid=stderr]')?"
        ".textContent.includes('to-stderr')")
    assert "Exit code" in page.locator("[data-testid=job-detail]").inner_text()
    assert row(page, job_id).locator("td").nth(2).inner_text() == "0"
    # this page's own job is not marked as another session's (job_status carries its sid)
    assert row(page, job_id).locator("[data-testid=other-session]").count() == 0
    portal.shot("psij")
    assert stderr.inner_text().strip() == "to-stderr"


def test_cancel_a_running_job(portal, bridge_url, parent):
    page = open_psij(portal, bridge_url)
    job_id = submit(page, "/bin/sleep", "120")
    row(page, job_id).locator(".badge[data-state=ACTIVE]").wait_for(timeout=30_000)
    row(page, job_id).locator("[data-testid=row-cancel]").click()
    page.click("[data-testid=confirm-ok]")
    row(page, job_id).locator(".badge[data-state=CANCELED]").wait_for(timeout=30_000)
    assert row(page, job_id).locator("[data-testid=row-cancel]").count() == 0
    # the job list survives a reload (same tab session)
    page.reload()
    row(page, job_id).locator(".badge[data-state=CANCELED]").wait_for()


def launch(page, name, executor, tunnel=False, duration=""):
    form = page.locator("[data-form=launch]")
    form.locator("[data-field=name]").fill(name)
    form.locator("[data-field=plugins]").fill("sysinfo")
    form.locator("[data-field=executor]").select_option(executor)
    if tunnel:
        form.locator("[data-field=tunnel]").check()
    if duration:
        form.locator("[data-field=duration]").fill(duration)
    page.click("[data-testid=launch-submit]")
    page.locator("[data-testid=launch-status] .banner").wait_for()


def test_launch_an_edge_through_a_tunnel(portal, bridge_url, parent):
    page = open_psij(portal, bridge_url)
    child = f"{PARENT}.1"
    launch(page, child, "local", tunnel=True)
    page.locator("[data-testid=launched-edge]").wait_for(timeout=60_000)
    node = page.locator(f'{portal.edge_node(PARENT)} li.tree-edge[data-edge="{child}"]')
    node.wait_for()
    assert node.locator("li[data-plugin=sysinfo]").count() == 1
    portal.shot("psij-launch")
    # its job is in the job table, and disconnecting the edge ends it
    services.wait_for_edge(bridge_url, child, 5)
    page.locator(f'{portal.edge_node(child)} > .node-row a.node-link').click()
    page.click("[data-testid=disconnect-edge]")
    page.click("[data-testid=confirm-ok]")
    # it leaves: greyed in the tree with why, until dismissed
    page.locator(f'{portal.edge_node(child)}[data-departed=disconnected]').wait_for(timeout=30_000)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_launch_an_edge_on_slurm_shows_a_compute_node_with_walltime(portal, bridge_url, parent):
    page = open_psij(portal, bridge_url)
    child = f"{PARENT}.2"
    launch(page, child, "slurm", duration="600")
    page.locator("[data-testid=launched-edge]").wait_for(timeout=120_000)
    node = page.locator(portal.edge_node(child))
    node.wait_for()
    assert node.get_attribute("data-role") == "compute"
    wall = node.locator(".walltime")
    wall.wait_for()
    assert wall.inner_text().startswith("⏳")
    portal.shot("psij-slurm-edge")
    # canceling its batch job from the job table takes the edge away
    job = page.locator("[data-testid=psij-jobs] tr", has_text=f"-n {child}")
    job.locator("[data-testid=row-cancel]").click()
    page.click("[data-testid=confirm-ok]")
    page.locator(f'{portal.edge_node(child)}[data-departed]').wait_for(timeout=60_000)
