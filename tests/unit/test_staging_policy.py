"""The staging plugin's path policy and Range parsing, on a real temporary file tree."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from radical.edge.plugins.staging.policy import PathPolicy, StagingError, default_roots
from radical.edge.plugins.staging.transfer import check_digest, parse_range


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, other = tmp_path / "root", tmp_path / "rootless"  # a shared name prefix
    root.mkdir()
    other.mkdir()
    (other / "f").write_text("x")
    (root / "out").symlink_to(other)
    (root / "sub").mkdir()
    return Path(os.path.realpath(root)), Path(os.path.realpath(other))


def status(policy: PathPolicy, path: object) -> int:
    with pytest.raises(StagingError) as err:
        policy.check(path)
    return err.value.status


def test_inside_roots(tree) -> None:
    root, _ = tree
    policy = PathPolicy(str(root))
    assert policy.check(str(root)) == str(root)
    assert policy.check(str(root / "sub" / "new.txt")) == str(root / "sub" / "new.txt")
    assert policy.check(str(root / "sub" / ".." / "x")) == str(root / "x")


def test_outside_and_escapes(tree) -> None:
    root, other = tree
    policy = PathPolicy(str(root))
    assert status(policy, str(other / "f")) == 403  # same prefix, not below the root
    assert status(policy, str(root / "out" / "f")) == 403  # symlink out
    assert status(policy, str(root / ".." / other.name)) == 403
    assert status(policy, "/") == 403
    assert status(policy, "relative/path") == 400
    assert status(policy, "") == 400
    assert status(policy, None) == 400
    assert status(policy, 42) == 400
    assert status(policy, str(root) + "/a\x00b") == 400


def test_roots_from_setting_and_default(tree, tmp_path: Path) -> None:
    root, other = tree
    policy = PathPolicy(os.pathsep.join([str(root), str(other), ""]))
    assert policy.roots == [str(root), str(other)]
    assert PathPolicy(None).roots == [os.path.realpath(r) for r in default_roots()]
    assert PathPolicy("").roots == PathPolicy(None).roots


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-", 100) == (90, 100)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=50-500", 100) == (50, 100)
    for bad in ("bytes=100-", "bytes=-", "items=0-1", "bytes=0-1,5-6"):
        with pytest.raises(StagingError) as err:
            parse_range(bad, 100)
        assert err.value.status == 416


def test_check_digest() -> None:
    assert check_digest(None) is None and check_digest("") is None
    assert check_digest("A" * 64) == "a" * 64
    with pytest.raises(StagingError) as err:
        check_digest("abc")
    assert err.value.status == 400


def test_original_module_path() -> None:
    from radical.edge.plugin_staging import PluginStaging, StagingClient, StagingSession
    from radical.edge.plugin_session_base import PluginSession

    assert PluginStaging.plugin_name == "staging" and issubclass(StagingSession, PluginSession)
    assert {"put", "get", "list", "upload", "download"} <= set(dir(StagingClient))


def test_upload_gate_orders_chunks_and_refuses_after_a_failure(tmp_path: Path) -> None:
    import asyncio

    from radical.edge.plugins.staging.gate import UploadGate

    path = str(tmp_path / "f")

    async def main() -> None:
        gate = UploadGate(wait_seconds=30)
        await gate.enter(path, 0)  # chunk 0 writes
        second = asyncio.ensure_future(gate.enter(path, 4))  # chunk 1 came early: waits
        await asyncio.sleep(0)
        assert not second.done()
        Path(path).write_bytes(b"abcd")
        await gate.leave(path, 0, "ok")
        await asyncio.wait_for(second, 10)  # now it may write
        third = asyncio.ensure_future(gate.enter(path, 8))
        await asyncio.sleep(0)
        Path(path).write_bytes(b"abcd")  # chunk 1 was cut back
        await gate.leave(path, 4, "failed")
        with pytest.raises(StagingError) as err:  # refused at once, not after the wait
            await asyncio.wait_for(third, 10)
        assert err.value.status == 409 and "resume from there" in err.value.detail
        await gate.enter(path, 4)  # the retry of chunk 1 goes ahead
        await gate.leave(path, 4, "ok")

    asyncio.run(main())


def test_names_the_filesystem_refuses_are_the_callers_fault(tree) -> None:
    """Found by the schemathesis run (tests/integration/test_openapi_fuzz.py): a too long
    name was a 500."""
    from radical.edge.plugins.staging import files

    long_name = str(tree[0] / ("x" * 5000))  # past PATH_MAX
    for call in (lambda: files.stat_path(long_name), lambda: files.make_dir(long_name, True, False)):
        with pytest.raises(StagingError) as err:
            call()
        assert err.value.status == 400 and "too long" in str(err.value)


def test_delete_refuses_a_nul_in_the_name(tree) -> None:
    """Found by the schemathesis run: a NUL in the last component of a delete path got past
    the directory check and made os.lstat raise, a 500."""
    import asyncio
    from types import SimpleNamespace

    from radical.edge.plugins.staging.plugin import StagingPlugin

    host = SimpleNamespace(settings=SimpleNamespace(staging_roots=str(tree[0])),
                           add_route=lambda *a: None, role="login")
    plugin = StagingPlugin(host)
    with pytest.raises(StagingError) as err:
        asyncio.run(plugin._entry_path(f"{tree[0]}/sub/a\x00b"))
    assert err.value.status == 400 and "NUL" in str(err.value)


def test_integer_arguments_are_ascii_digits() -> None:
    """'²'.isdigit() is true but int('²') raises: a 500 before."""
    from types import SimpleNamespace

    from radical.edge.plugins.staging.transfer import int_arg

    for raw, want in (("12", 12), ("", 7)):
        assert int_arg(SimpleNamespace(query_params={"offset": raw}), "offset", 7) == want
    for raw in ("²", "-1", "1e3", "١٢"):
        with pytest.raises(StagingError) as err:
            int_arg(SimpleNamespace(query_params={"offset": raw}), "offset", 0)
        assert err.value.status == 400
