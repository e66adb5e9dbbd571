"""My work (#/work) in real Chromium: a user's psij jobs and rhapsody tasks from other
sessions (submitted over HTTP, not from this tab) with times and live states, sorting,
filtering, paging, copy id, a link to the job's directory in the staging browser, and
another user seeing none of it. Screenshots at desktop and phone widths, axe-checked there."""
from __future__ import annotations

import uuid

import httpx
import pytest
from authed import AUTH, new_token
from waiting import wait_for

from radical.edge import services

pytest.importorskip("psij")
pytest.importorskip("rhapsody")

PHONE = {"width": 400, "height": 860}


@pytest.fixture(scope="module")
def edge(module_edges):
    return module_edges.psij_edge("psij,rhapsody,staging", prefix="mw")


@pytest.fixture(scope="module")
def users(bridge_url):
    suffix = uuid.uuid4().hex[:6]
    return {who: (f"{who}{suffix}", new_token(bridge_url, f"{who}{suffix}", "submit")) for who in ("alice", "bob")}


def login_as(page, bridge_url: str, tok: str) -> None:
    """The portal link a user gets for their own token (`radical-edge login` does the same)."""
    r = httpx.post(f"{bridge_url}/bridge/login-ticket", timeout=10,
                   headers={"Authorization": f"Bearer {tok}"})
    r.raise_for_status()
    page.goto(r.json()["url"])
    page.wait_for_function("() => !!sessionStorage.getItem('radical_edge_token')")


def submit_work(bridge_url: str, tok: str, edge: str) -> dict[str, str]:
    """Two psij jobs (two sessions) and two rhapsody tasks, as another client would."""
    ids = {}
    with httpx.Client(base_url=bridge_url, timeout=60,
                      headers={"Authorization": f"Bearer {tok}"}) as http:
        for label, script in (("ok", "echo hello"), ("bad", "sleep 1; exit 4")):
            sid = http.post(f"/{edge}/psij/register_session", json={}).json()["sid"]
            r = http.post(f"/{edge}/psij/submit/{sid}", json={
                "job_spec": {"executable": "/bin/sh", "arguments": ["-c", script]}})
            assert r.status_code == 200, r.text
            ids[label] = r.json()["job_id"]
        sid = http.post(f"/{edge}/rhapsody/register_session",
                        json={"backends": ["concurrent"]}).json()["sid"]
        services.wait_until(lambda: http.get(f"/{edge}/rhapsody/session_status/{sid}")
                            .json()["status"] == "ready", 60, "the rhapsody session")
        r = http.post(f"/{edge}/rhapsody/submit/{sid}", json={"tasks": [
            {"executable": "/bin/echo", "arguments": ["task one"]},
            {"executable": "/bin/echo", "arguments": ["task two"]}]})
        assert r.status_code == 200, r.text
        ids["t1"], ids["t2"] = (t["uid"] for t in r.json())
    return ids


def rows(page):
    return page.locator("[data-testid=work-rows] tbody tr")


def ids_shown(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=work-rows] tbody tr",
                                     "els => els.map(e => e.dataset.id)")


def test_my_work_lists_jobs_and_tasks_from_other_sessions(portal, page, browser, bridge_url,
                                                          edge, users):
    alice, alice_tok = users["alice"]
    login_as(page, bridge_url, alice_tok)
    page.goto(f"{bridge_url}/#/work")
    page.locator("[data-testid=work-empty]").wait_for()
    ids = submit_work(bridge_url, alice_tok, edge)
    # the page refreshes itself from the notifications: every item ends with its state
    page.locator(f'[data-testid=work-rows] tr[data-id="{ids["bad"]}"] '
                 '.badge[data-state=FAILED]').wait_for(timeout=30_000)
    page.locator(f'[data-testid=work-rows] tr[data-id="{ids["t2"]}"] '
                 '.badge[data-state=DONE]').wait_for(timeout=30_000)
    assert page.locator("[data-testid=work-user]").inner_text() == f"signed in as {alice}"
    assert set(ids_shown(page)) == set(ids.values())
    bad = page.locator(f'[data-testid=work-rows] tr[data-id="{ids["bad"]}"]')
    cells = bad.locator("td").all_inner_texts()
    assert bad.get_attribute("data-kind") == "psij" and "psij" in cells[1]
    assert cells[2] == edge and "exit 4" in cells[3]
    assert all(c != "—" for c in cells[5:9]), cells  # submitted, started, ended, duration
    assert cells[9] == "4"
    # newest first by default; sorting by submit time ascending reverses it
    newest_first = ids_shown(page)
    page.click("[data-testid=sort-submitted]")
    page.wait_for_function(f"() => document.querySelector('[data-testid=work-rows] tbody tr')?"
                           f".dataset.id === '{ids['ok']}'")
    assert ids_shown(page) == newest_first[::-1]
    assert page.locator("th[aria-sort=ascending]").inner_text().startswith("Submitted")
    # filter: rhapsody tasks only; then a search
    page.select_option("[data-testid=work-kind]", "rhapsody")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=work-rows] tbody tr')"
                           ".length === 2")
    assert set(ids_shown(page)) == {ids["t1"], ids["t2"]}
    page.select_option("[data-testid=work-kind]", "")
    page.fill("[data-testid=work-search]", "exit 4")
    page.wait_for_function(f"() => [...document.querySelectorAll('[data-testid=work-rows] tbody "
                           f"tr')].map(e => e.dataset.id).join() === '{ids['bad']}'")
    page.fill("[data-testid=work-search]", "")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=work-rows] tbody tr')"
                           ".length === 4")
    # paging: 25 per page is the smallest size: a direct route with limit=... is clamped, so
    # page through with the API's own paging instead (offset in the route)
    page.goto(f"{bridge_url}/#/work?sort=submitted&order=asc&limit=25&offset=2")
    page.locator("[data-testid=work-count]").wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=work-count]')?"
                           ".textContent.startsWith('3–4 of 4')")
    assert ids_shown(page) == [ids["t1"], ids["t2"]]
    page.click("[data-testid=work-prev]")
    page.wait_for_function("() => document.querySelector('[data-testid=work-count]')?"
                           ".textContent.startsWith('1–4 of 4')")
    # copy id
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=bridge_url)
    bad = page.locator(f'[data-testid=work-rows] tr[data-id="{ids["bad"]}"]')
    bad.locator("[data-testid=copy-id]").click()
    assert page.evaluate("navigator.clipboard.readText()") == ids["bad"]
    portal.shot("mywork")
    assert portal.a11y_violations() == [], "My work at desktop width"
    # the job's files: the row links into the staging browser at the job's directory
    ok = page.locator(f'[data-testid=work-rows] tr[data-id="{ids["ok"]}"]')
    ok.locator("[data-testid=work-browse]").click()
    page.locator("[data-testid=staging-listing] table").wait_for()
    assert page.locator("[data-testid=staging-path]").input_value()
    assert "/staging?path=" in page.url

    # phone width
    page.set_viewport_size(PHONE)
    page.goto(f"{bridge_url}/#/work")
    rows(page).first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    portal.shot("mywork-phone")
    assert portal.a11y_violations() == [], "My work at phone width"

    # another user, another browser context: nothing of alice's
    other = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        bob_page = other.new_page()
        login_as(bob_page, bridge_url, users["bob"][1])
        bob_page.goto(f"{bridge_url}/#/work")
        bob_page.locator("[data-testid=work-empty]").wait_for()
        assert bob_page.locator("[data-testid=work-user]").inner_text() \
            == f"signed in as {users['bob'][0]}"
    finally:
        other.close()


def test_my_work_survives_a_reload_and_a_new_tab(page, browser, bridge_url, edge):
    tok = new_token(bridge_url, f"carol{uuid.uuid4().hex[:6]}", "submit")
    submit_work(bridge_url, tok, edge)
    login_as(page, bridge_url, tok)
    page.goto(f"{bridge_url}/#/work?kind=psij")
    rows(page).first.wait_for()
    before = ids_shown(page)
    page.reload()
    rows(page).first.wait_for()
    assert ids_shown(page) == before
    fresh = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        tab = fresh.new_page()
        login_as(tab, bridge_url, tok)
        tab.goto(f"{bridge_url}/#/work?kind=psij")
        tab.locator("[data-testid=work-rows] tbody tr").first.wait_for()
        assert tab.eval_on_selector_all("[data-testid=work-rows] tbody tr",
                                        "els => els.map(e => e.dataset.id)") == before
    finally:
        fresh.close()


def test_my_work_open_through_a_bridge_restart_shows_what_ended_meanwhile(portal, make_bridge, make_edge,
                                                                            tmp_path):
    """The page stays open while the bridge restarts on its port; a job that ended while no
    bridge ran shows as ended once the page is reconnected (the index caught up)."""
    port = services.free_port()
    first = make_bridge(port=port)
    url = first.extra["url"]
    name = f"mwr{uuid.uuid4().hex[:5]}"
    make_edge(plugins="psij", name=name, env={"RADICAL_EDGE_PSIJ_DIR": str(tmp_path)})
    page = portal.open(url, f"/work?edge={name}")
    with httpx.Client(base_url=url, timeout=60, headers=AUTH) as http:
        sid = http.post(f"/{name}/psij/register_session", json={}).json()["sid"]
        r = http.post(f"/{name}/psij/submit/{sid}", json={
            "job_spec": {"executable": "/bin/sh", "arguments": ["-c", "sleep 4; echo late"]},
            "executor": "local"})
        assert r.status_code == 200, r.text
        job_id = r.json()["job_id"]
    row = page.locator(f'[data-testid=work-rows] tr[data-id="{job_id}"]')
    row.locator(".badge[data-state=ACTIVE]").wait_for(timeout=30_000)
    first.stop()
    page.locator("#bridge-banner[data-state=reconnecting]").wait_for()
    # the job ends while no bridge runs (its end waits in Redis for the next bridge)
    wait_for(lambda: any(p.read_text().strip() == "late" for p in tmp_path.glob("**/*.out")), 30,
             what="the job's output")
    make_bridge(port=port)
    portal.wait_connected(timeout=30_000)
    row.locator(".badge[data-state=COMPLETED]").wait_for(timeout=30_000)
    assert page.locator("#bridge-banner").is_hidden()
