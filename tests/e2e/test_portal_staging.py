"""The staging file browser in a real browser against a real bridge and edge: browse,
upload with progress, download, new folder, delete after confirmation."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def files_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(os.path.realpath(tmp_path_factory.mktemp("portal-staging")))
    (root / "results").mkdir()
    (root / "results" / "out.txt").write_text("job output\n")
    (root / "readme.txt").write_text("hello from the edge\n")
    return root


@pytest.fixture(scope="module")
def fs_edge(module_edges, files_root: Path):
    return module_edges(name="fs", plugins="staging",
                        env={"RADICAL_EDGE_STAGING_ROOTS": str(files_root)})


def row(page, name: str):
    return page.locator(f"[data-testid=staging-listing] tr[data-name='{name}']")


def test_file_browser(portal, bridge_url, fs_edge, files_root: Path, tmp_path: Path) -> None:
    page = portal.open(bridge_url, "/e/fs/staging")
    listing = page.locator("[data-testid=staging-listing]")
    row(page, "readme.txt").wait_for()
    assert page.locator("[data-testid=staging-path]").input_value() == str(files_root)
    assert row(page, "results").get_attribute("data-type") == "dir"

    # browse into a folder and back up
    row(page, "results").locator("[data-testid=staging-dir]").click()
    row(page, "out.txt").wait_for()
    assert page.locator("[data-testid=staging-path]").input_value() == str(files_root / "results")
    page.click("[data-testid=staging-up]")
    row(page, "readme.txt").wait_for()

    # upload (several chunks: the progress text counts them) and the file appears
    data = os.urandom(9 * 1024 * 1024 + 5)
    local = tmp_path / "upload.bin"
    local.write_bytes(data)
    page.set_input_files("[data-testid=staging-file]", str(local))
    page.click("[data-testid=staging-upload]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=staging-progress-text]')?.textContent"
        ".startsWith('uploaded upload.bin')", timeout=60_000)
    row(page, "upload.bin").wait_for()
    assert (files_root / "upload.bin").read_bytes() == data

    # the same name again: replacing needs a confirmation
    local.write_bytes(b"second version")
    page.set_input_files("[data-testid=staging-file]", str(local))
    page.click("[data-testid=staging-upload]")
    page.click("[data-testid=confirm-cancel]")
    assert (files_root / "upload.bin").read_bytes() == data
    page.click("[data-testid=staging-upload]")
    page.click("[data-testid=confirm-ok]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=staging-progress-text]')?.textContent"
        ".startsWith('uploaded upload.bin (14 B)')", timeout=60_000)
    assert (files_root / "upload.bin").read_bytes() == b"second version"

    # download
    with page.expect_download() as info:
        row(page, "readme.txt").locator("[data-testid=staging-download]").click()
    saved = tmp_path / "readme-down.txt"
    info.value.save_as(str(saved))
    assert saved.read_text() == "hello from the edge\n"

    # new folder, then delete it after confirming (cancel first: nothing happens)
    page.fill("[data-testid=staging-folder]", "fresh")
    page.click("[data-testid=staging-mkdir]")
    row(page, "fresh").wait_for()
    assert (files_root / "fresh").is_dir()
    row(page, "fresh").locator("[data-testid=staging-delete]").click()
    page.click("[data-testid=confirm-cancel]")
    assert (files_root / "fresh").is_dir()
    row(page, "fresh").locator("[data-testid=staging-delete]").click()
    page.click("[data-testid=confirm-ok]")
    row(page, "fresh").wait_for(state="detached")
    assert not (files_root / "fresh").exists()

    portal.shot("staging")

    # a path outside the allowed roots: the server's 403 shows, nothing breaks
    page.fill("[data-testid=staging-path]", "/etc")
    page.press("[data-testid=staging-path]", "Enter")
    listing.locator(".error-box").wait_for()
    assert "outside the allowed directories" in listing.inner_text()
    # errors show once, where they happened (in the listing, at the folder form), not as toasts
    page.fill("[data-testid=staging-path]", str(files_root))
    page.press("[data-testid=staging-path]", "Enter")
    row(page, "results").wait_for()
    folder_err = page.locator("[data-testid=staging-folder-error] [role=alert]")
    page.fill("[data-testid=staging-folder]", "a/b")
    page.click("[data-testid=staging-mkdir]")
    assert "without slashes" in folder_err.inner_text()
    page.fill("[data-testid=staging-folder]", "results")  # exists: the plugin refuses
    page.click("[data-testid=staging-mkdir]")
    page.wait_for_function("() => /\\b4\\d\\d: /.test(document.querySelector("
                           "'[data-testid=staging-folder-error]').textContent)")
    assert "'results' not created" in folder_err.inner_text()
    assert page.locator("[data-testid=toast][data-kind=error]").count() == 0
    folder_err.locator("[data-testid=dismiss-error]").click()
    folder_err.wait_for(state="detached")


def test_psij_job_paths_link_to_the_file_browser(portal, bridge_url, module_edges,
                                                 tmp_path_factory) -> None:
    pytest.importorskip("psij")
    psij_dir = tmp_path_factory.mktemp("portal-staging-psij")
    module_edges(name="fsjob", plugins="psij,staging", env={"RADICAL_EDGE_PSIJ_DIR": str(psij_dir)})
    page = portal.open(bridge_url, "/e/fsjob/psij")
    form = page.locator("[data-form=submit]")
    form.locator("[data-field=executable]").wait_for()
    form.locator("[data-field=executable]").fill("/bin/echo")
    form.locator("[data-field=arguments]").fill("hello")
    form.locator("[data-field=executor]").select_option("local")
    page.click("[data-testid=submit-submit]")
    link = page.locator("[data-testid=job-detail] [data-testid=browse-link]", has_text=".out")
    link.wait_for(timeout=30_000)
    out_name = link.inner_text().rsplit("/", 1)[1]
    link.click()
    # the staging page opens at the job's output directory, listing its stdout file
    page.locator("[data-testid=staging-listing] tr[data-name='%s']" % out_name).wait_for()
    assert page.locator("[data-testid=staging-path]").input_value().startswith(
        os.path.realpath(str(psij_dir)))
