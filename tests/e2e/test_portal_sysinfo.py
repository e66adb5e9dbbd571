"""Plugin pages that need no running jobs: sysinfo's cards, and the generic page a plugin
without any portal JavaScript gets (here `echo`, whose ui_config is empty)."""
from __future__ import annotations

import os
import socket

import psutil
import pytest


@pytest.fixture(scope="module")
def info_edge(module_edges):
    return module_edges(name="lab", plugins="sysinfo,echo")


def test_sysinfo_values_render(portal, bridge_url, info_edge):
    page = portal.open(bridge_url, "/e/lab/sysinfo")
    root = page.locator("[data-testid=sysinfo]")
    root.locator(".cards").wait_for()
    text = root.inner_text()
    for title in ("System", "CPU", "Memory", "GPUs", "Disks", "Network"):
        assert title in text
    assert socket.gethostname() in text
    assert f"{psutil.cpu_count(logical=False) or os.cpu_count()} physical / {os.cpu_count()} logical" in text
    total_gib = psutil.virtual_memory().total / 2**30
    assert f"{total_gib:.1f} GiB" in text
    assert root.locator("table.grid").count() >= 2  # disks and network tables
    assert "/" in root.locator(".card", has_text="Disks").inner_text()

    # refresh fetches again
    stamp = page.locator(".stamp")
    before = stamp.inner_text()
    page.wait_for_timeout(1100)
    page.click("[data-testid=refresh]")
    page.wait_for_function("b => (document.querySelector('.stamp')?.textContent ?? b) !== b", arg=before)
    portal.shot("sysinfo")


def test_generic_page_for_a_plugin_without_ui(portal, bridge_url, info_edge):
    page = portal.open(bridge_url, "/e/lab/echo")
    page.locator("[data-testid=plugin-title]").wait_for()
    assert "Echo" in page.locator("[data-testid=plugin-title]").inner_text()
    # the endpoint console reaches the plugin (with this page's session for {sid})
    page.click("details.console > summary")
    page.fill("details.console input[aria-label=path]", "greet/{sid}")
    page.click("details.console button[type=submit]")
    out = page.locator("details.console pre.json")
    out.wait_for()
    assert '"greeting": "hello"' in out.inner_text()
    # a failing route: the server's detail below the console (once: no toast), no stack trace
    page.fill("details.console input[aria-label=path]", "boom")
    page.click("details.console button[type=submit]")
    err = page.locator("details.console .console-out .error-box")
    err.wait_for()
    assert "deliberate failure" in err.inner_text()
    assert "Traceback" not in err.inner_text()
    assert page.locator("[data-testid=toast]").count() == 0
