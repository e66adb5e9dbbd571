"""The staging plugin on a real bridge and edge: the original API's shapes, the path policy,
streamed resumable sha256-checked transfers, stat/mkdir/delete."""
from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

import authed
from radical.edge import BridgeClient, EdgeError

EDGE = "stage1"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The edge's only allowed root (so 'outside' is easy to name)."""
    return Path(os.path.realpath(tmp_path_factory.mktemp("staging-root")))


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = Path(os.path.realpath(tmp_path_factory.mktemp("staging-outside")))
    (d / "secret.txt").write_text("not yours")
    return d


@pytest.fixture(scope="module")
def edge(module_edges, root: Path):
    return module_edges(name=EDGE, plugins="staging",
                        env={"RADICAL_EDGE_STAGING_ROOTS": str(root)})


@pytest.fixture(scope="module")
def bc(bridge_url: str, edge):
    client = BridgeClient(bridge_url)
    yield client
    client.close()


@pytest.fixture
def st(bc: BridgeClient):
    client = bc.get_edge_client(EDGE).get_plugin("staging")
    yield client
    client.close()


def url(bridge_url: str, route: str) -> str:
    return f"{bridge_url}/{EDGE}/staging/{route}"


# -- the original API ---------------------------------------------------------------------
def test_original_routes_and_shapes(bridge_url: str, edge, root: Path) -> None:
    sid = authed.post(url(bridge_url, "register_session"), json={}).json()["sid"]
    target = root / "orig" / "a.bin"
    body = {"filename": str(target), "content": base64.b64encode(b"hello\x00world").decode(),
            "overwrite": False}
    r = authed.post(url(bridge_url, f"put/{sid}"), json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"path": str(target), "size": 11}
    assert target.read_bytes() == b"hello\x00world"

    again = authed.post(url(bridge_url, f"put/{sid}"), json=body)
    assert again.status_code == 409 and "exists" in again.json()["detail"]
    body["overwrite"] = True
    body["content"] = base64.b64encode(b"new").decode()
    assert authed.post(url(bridge_url, f"put/{sid}"), json=body).json()["size"] == 3

    got = authed.post(url(bridge_url, f"get/{sid}"), json={"filename": str(target)}).json()
    assert got["path"] == str(target) and got["size"] == 3
    assert base64.b64decode(got["content"]) == b"new"
    missing = authed.post(url(bridge_url, f"get/{sid}"), json={"filename": str(root / "nope")})
    assert missing.status_code == 404 and missing.json()["detail"]

    (root / "orig" / "sub").mkdir()
    listing = authed.post(url(bridge_url, f"list/{sid}"), json={"path": str(root / "orig")})
    assert listing.status_code == 200
    data = listing.json()
    assert data["path"] == str(root / "orig")
    entries = {e["name"]: e for e in data["entries"]}
    assert entries["a.bin"]["type"] == "file" and entries["a.bin"]["size"] == 3
    assert entries["sub"]["type"] == "dir" and entries["sub"]["size"] is None
    assert [e["name"] for e in data["entries"]] == sorted(entries)

    for route, payload, status in [
        ("put", {"content": "eA=="}, 400),                     # no filename
        ("put", {"filename": "rel/x", "content": "eA=="}, 400),  # relative path
        ("put", {"filename": str(root / "x"), "content": "***"}, 400),  # bad base64
        ("list", {"path": str(target)}, 400),                  # not a directory
        ("list", {"path": str(root / "none")}, 404),
        ("get", {"filename": str(root / "orig")}, 400),        # a directory
    ]:
        r = authed.post(url(bridge_url, f"{route}/{sid}"), json=payload)
        assert r.status_code == status, (route, payload, r.text)
        assert isinstance(r.json()["detail"], str)
    r = authed.post(url(bridge_url, "list/session.nosuch"), json={"path": str(root)})
    assert r.status_code == 404


def test_client_put_get_list(st, root: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_bytes(b"payload " * 100)
    assert st.put(str(src), str(root / "c" / "p.txt")) == {"path": str(root / "c" / "p.txt"),
                                                           "size": 800}
    with pytest.raises(FileExistsError):
        st.put(str(src), str(root / "c" / "p.txt"))
    assert st.put(str(src), str(root / "c" / "p.txt"), overwrite=True)["size"] == 800
    out = tmp_path / "back.txt"
    assert st.get(str(root / "c" / "p.txt"), str(out)) == {"path": str(out), "size": 800}
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(FileExistsError):  # refuses an existing local target, as the original
        st.get(str(root / "c" / "p.txt"), str(out))
    with pytest.raises(FileNotFoundError):
        st.get(str(root / "c" / "missing"), str(tmp_path / "m"))
    assert [e["name"] for e in st.list(str(root / "c"))["entries"]] == ["p.txt"]
    with pytest.raises(FileNotFoundError):
        st.list(str(root / "nodir"))
    with pytest.raises(NotADirectoryError):
        st.list(str(root / "c" / "p.txt"))


def test_original_client_stand_in(bridge_url: str, edge, root: Path, tmp_path: Path) -> None:
    """The original client's StagingClient, unchanged, against this plugin."""
    from compat import orig_client as orig

    bc = orig.BridgeClient(bridge_url.replace("://", f"://:{authed.TOKEN}@"))
    try:
        st = bc.get_edge_client(EDGE).get_plugin("staging")
        src = tmp_path / "o.txt"
        src.write_bytes(b"original client")
        assert st.put(str(src), str(root / "o" / "o.txt")) == {"path": str(root / "o" / "o.txt"),
                                                               "size": 15}
        with pytest.raises(FileExistsError):
            st.put(str(src), str(root / "o" / "o.txt"))
        assert st.get(str(root / "o" / "o.txt"), str(tmp_path / "back.txt"))["size"] == 15
        assert (tmp_path / "back.txt").read_bytes() == b"original client"
        with pytest.raises(FileNotFoundError):
            st.get(str(root / "o" / "none"), str(tmp_path / "none"))
        assert st.list(str(root / "o"))["entries"][0]["name"] == "o.txt"
        with pytest.raises(NotADirectoryError):
            st.list(str(root / "o" / "o.txt"))
        with pytest.raises(RuntimeError) as err:  # outside the roots: the HTTP error text
            st.list("/etc")
        assert "HTTP 403" in str(err.value)
        st.close()
    finally:
        bc.close()


# -- path policy ----------------------------------------------------------------------------
def test_outside_roots_is_403(st, outside: Path, root: Path, tmp_path: Path) -> None:
    for call in (lambda: st.stat(str(outside / "secret.txt")),
                 lambda: st.list(str(outside)),
                 lambda: st.list("/etc"),
                 lambda: st.stat(str(root / ".." / outside.name / "secret.txt")),
                 lambda: st.mkdir(str(outside / "new")),
                 lambda: st.delete(str(outside / "secret.txt")),
                 lambda: st.delete(str(root))):
        with pytest.raises(EdgeError) as err:
            call()
        assert err.value.status == 403, err.value
    src = tmp_path / "f"
    src.write_bytes(b"x")
    with pytest.raises(EdgeError) as err:
        st.upload(str(src), str(outside / "dropped"))
    assert err.value.status == 403
    assert (outside / "secret.txt").read_text() == "not yours"
    assert not (outside / "dropped").exists() and not (outside / "new").exists()


def test_symlink_escape_refused(st, root: Path, outside: Path, tmp_path: Path) -> None:
    (root / "escape").symlink_to(outside)
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    for path in (root / "escape" / "secret.txt", root / "leak.txt", root / "escape"):
        with pytest.raises(EdgeError) as err:
            st.stat(str(path))
        assert err.value.status == 403
    with pytest.raises(EdgeError) as err:
        st.download(str(root / "leak.txt"), str(tmp_path / "leak"))
    assert err.value.status == 403 and not (tmp_path / "leak").exists()
    src = tmp_path / "f"
    src.write_bytes(b"overwrite attempt")
    with pytest.raises(EdgeError) as err:
        st.upload(str(src), str(root / "escape" / "secret.txt"), overwrite=True)
    assert err.value.status == 403
    # deleting the link removes the link, never what it points to
    assert st.delete(str(root / "leak.txt"))["deleted"] is True
    assert not (root / "leak.txt").is_symlink()
    assert (outside / "secret.txt").read_text() == "not yours"
    # a link that stays inside the roots is fine
    (root / "inner").mkdir()
    (root / "inner" / "f").write_bytes(b"ok")
    (root / "inner-link").symlink_to(root / "inner")
    assert st.stat(str(root / "inner-link" / "f"))["size"] == 2


def test_stat_mkdir_delete(st, root: Path) -> None:
    d = root / "tree" / "a" / "b"
    made = st.mkdir(str(d))
    assert made["type"] == "dir" and made["path"] == str(d)
    with pytest.raises(EdgeError) as err:
        st.mkdir(str(d))
    assert err.value.status == 409
    assert st.mkdir(str(d), exist_ok=True)["type"] == "dir"
    (d / "f.txt").write_bytes(b"abc")
    info = st.stat(str(d / "f.txt"), sha256=True)
    assert info["size"] == 3 and info["type"] == "file"
    assert info["sha256"] == hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(EdgeError) as err:
        st.stat(str(d / "nope"))
    assert err.value.status == 404
    assert not st.exists(str(d / "nope")) and st.exists(str(d))
    with pytest.raises(EdgeError) as err:  # not empty
        st.delete(str(root / "tree"))
    assert err.value.status == 409
    assert st.delete(str(d / "f.txt")) == {"path": str(d / "f.txt"), "deleted": True}
    assert st.delete(str(root / "tree"), recursive=True)["deleted"] is True
    assert not (root / "tree").exists()
    with pytest.raises(EdgeError) as err:
        st.delete(str(root / "tree"))
    assert err.value.status == 404


# -- streamed transfers ---------------------------------------------------------------------
def test_upload_download_round_trip_with_progress(st, root: Path, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    seen: list[tuple[int, int]] = []
    out = st.upload(str(src), str(root / "up" / "big.bin"), chunk_size=1024 * 1024,
                    progress=lambda done, total: seen.append((done, total)))
    assert out["size"] == len(data) and out["sha256"] == hashlib.sha256(data).hexdigest()
    assert seen[-1] == (len(data), len(data)) and len(seen) == 6
    assert (root / "up" / "big.bin").read_bytes() == data
    with pytest.raises(EdgeError) as err:  # exists, no overwrite
        st.upload(str(src), str(root / "up" / "big.bin"))
    assert err.value.status == 409

    target = tmp_path / "down.bin"
    got = st.download(str(root / "up" / "big.bin"), str(target), chunk_size=2 * 1024 * 1024)
    assert got["size"] == len(data) and target.read_bytes() == data
    with pytest.raises(FileExistsError):
        st.download(str(root / "up" / "big.bin"), str(target))
    # from a file object, to a file object
    import io
    buf = io.BytesIO()
    st.download(str(root / "up" / "big.bin"), buf)
    assert buf.getvalue() == data
    st.upload(io.BytesIO(b""), str(root / "up" / "empty"))
    assert (root / "up" / "empty").read_bytes() == b""
    assert st.download(str(root / "up" / "empty"), str(tmp_path / "empty"))["size"] == 0
    with pytest.raises(EdgeError) as err:  # a directory is no file to download
        st.download(str(root / "up"), str(tmp_path / "dir"))
    assert err.value.status == 400 and not (tmp_path / "dir").exists()


def test_upload_resumes_after_interruption(st, root: Path, tmp_path: Path) -> None:
    data = os.urandom(4 * 1024 * 1024 + 7)
    src = tmp_path / "r.bin"
    src.write_bytes(data)

    class Crash(Exception):
        pass

    def crash_after_two(done: int, total: int) -> None:
        if done >= 2 * 1024 * 1024:
            raise Crash()

    with pytest.raises(Crash):
        st.upload(str(src), str(root / "r.bin"), chunk_size=1024 * 1024,
                  progress=crash_after_two)
    have = st.stat(str(root / "r.bin"))["size"]  # whole chunks only (one more may have
    assert have in (2 * 1024 * 1024, 3 * 1024 * 1024)  # been in flight at the crash)
    assert (root / "r.bin").read_bytes() == data[:have]
    # writing at a wrong offset names the size to resume from
    r = authed.post(url(st.base_url.split(f"/{EDGE}/")[0], f"upload/{st.sid}"),
                    params={"path": str(root / "r.bin"), "offset": 5}, content=b"zz")
    assert r.status_code == 409 and f"resume from offset {have}" in r.json()["detail"]
    out = st.upload(str(src), str(root / "r.bin"), chunk_size=1024 * 1024, resume=True)
    assert out["sent"] == len(data) - have
    assert (root / "r.bin").read_bytes() == data

    # a download resumes from the local file's size
    part = tmp_path / "part.bin"
    part.write_bytes(data[:1000])
    got = st.download(str(root / "r.bin"), str(part), resume=True)
    assert got["received"] == len(data) - 1000 and part.read_bytes() == data


def test_client_recovers_from_a_damaged_chunk(st, root: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk the edge receives damaged (422) is sent again; the chunks after it, already
    in flight, are refused (409) and sent again too."""
    data = os.urandom(4 * 1024 * 1024)
    src = tmp_path / "d.bin"
    src.write_bytes(data)
    send = st._send_chunk
    damaged: list[int] = []

    def flaky(sid, tgt, offset, chunk, overwrite):
        if offset == 1024 * 1024 and not damaged:
            damaged.append(offset)
            return _damaged(sid, tgt, offset, chunk)
        return send(sid, tgt, offset, chunk, overwrite)

    def _damaged(sid, tgt, offset, chunk):  # the digest of other bytes: as if bits flipped
        return st._request("POST", f"upload/{sid}", content=chunk,
                           headers={"Content-Type": "application/octet-stream"},
                           params={"path": tgt, "offset": offset,
                                   "sha256": hashlib.sha256(b"other").hexdigest()})

    monkeypatch.setattr(st, "_send_chunk", flaky)
    out = st.upload(str(src), str(root / "d.bin"), chunk_size=1024 * 1024)
    assert damaged == [1024 * 1024]
    assert out["size"] == len(data) and (root / "d.bin").read_bytes() == data


def test_sha256_mismatch_is_422_and_discarded(st, bridge_url: str, root: Path) -> None:
    target = root / "sha.bin"
    good = hashlib.sha256(b"first").hexdigest()
    r = authed.post(url(bridge_url, f"upload/{st.sid}"),
                    params={"path": str(target), "offset": 0, "sha256": good}, content=b"first")
    assert r.status_code == 200 and r.json()["size"] == 5 and r.json()["sha256"] == good
    bad = hashlib.sha256(b"other").hexdigest()
    r = authed.post(url(bridge_url, f"upload/{st.sid}"),
                    params={"path": str(target), "offset": 5, "sha256": bad}, content=b"second")
    assert r.status_code == 422 and "sha256 mismatch" in r.json()["detail"]
    assert target.read_bytes() == b"first"  # cut back: the chunk can be sent again
    # a damaged first chunk leaves no file behind: sending it again needs no overwrite
    fresh = root / "sha-fresh.bin"
    r = authed.post(url(bridge_url, f"upload/{st.sid}"),
                    params={"path": str(fresh), "offset": 0, "sha256": bad}, content=b"first")
    assert r.status_code == 422 and not fresh.exists()
    r = authed.post(url(bridge_url, f"upload/{st.sid}"),
                    params={"path": str(fresh), "offset": 0, "sha256": good}, content=b"first")
    assert r.status_code == 200 and fresh.read_bytes() == b"first"
    r = authed.post(url(bridge_url, f"upload/{st.sid}"),
                    params={"path": str(target), "offset": 0, "sha256": "xyz"}, content=b"a")
    assert r.status_code == 400
    for bad_offset in ("-1", "x"):
        r = authed.post(url(bridge_url, f"upload/{st.sid}"),
                        params={"path": str(target), "offset": bad_offset}, content=b"a")
        assert r.status_code == 400, r.text
    assert target.read_bytes() == b"first"


def test_download_range_header(st, bridge_url: str, root: Path) -> None:
    (root / "range.bin").write_bytes(bytes(range(256)) * 4)
    r = authed.get(url(bridge_url, f"download/{st.sid}"), params={"path": str(root / "range.bin")},
                   headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == bytes(range(10, 20))
    assert r.headers["content-range"] == "bytes 10-19/1024"
    r = authed.get(url(bridge_url, f"download/{st.sid}"), params={"path": str(root / "range.bin"),
                                                               "offset": 1000})
    assert r.status_code == 200 and r.content == (bytes(range(256)) * 4)[1000:]
    r = authed.get(url(bridge_url, f"download/{st.sid}"), params={"path": str(root / "range.bin")},
                   headers={"Range": "bytes=5000-"})
    assert r.status_code == 416
    r = authed.get(url(bridge_url, f"download/{st.sid}"), params={"path": str(root / "nope")})
    assert r.status_code == 404


def test_hosted_on_the_bridge(make_bridge, root: Path, tmp_path: Path) -> None:
    """`radical-edge bridge --plugins staging`: the same API under /bridge/staging/."""
    hosting = make_bridge(env={"RADICAL_EDGE_BRIDGE_PLUGINS": "staging",
                               "RADICAL_EDGE_STAGING_ROOTS": str(root)})
    client = BridgeClient(hosting.extra["url"])
    try:
        st = client.get_edge_client("bridge").get_plugin("staging")
        data = os.urandom(3 * 1024 * 1024 + 1)
        src = tmp_path / "hosted.bin"
        src.write_bytes(data)
        up = st.upload(str(src), str(root / "hosted" / "h.bin"), chunk_size=1024 * 1024)
        assert up["size"] == len(data) and (root / "hosted" / "h.bin").read_bytes() == data
        got = st.download(str(root / "hosted" / "h.bin"), str(tmp_path / "h.bin"))
        assert got["sha256"] == hashlib.sha256(data).hexdigest()
        assert [e["name"] for e in st.list(str(root / "hosted"))["entries"]] == ["h.bin"]
        with pytest.raises(EdgeError) as err:
            st.list("/etc")
        assert err.value.status == 403
        st.close()
    finally:
        client.close()


def test_file_io_stays_off_the_plugin_loop(st, bridge_url: str, root: Path) -> None:
    """An upload whose open() hangs (a FIFO without a reader stands in for a hung NFS
    mount) must not stop the edge answering other calls."""
    import threading

    fifo = root / "hung-fifo"
    os.mkfifo(fifo)
    result: dict = {}

    def send() -> None:
        result["r"] = authed.post(url(bridge_url, f"upload/{st.sid}"),
                                  params={"path": str(fifo), "offset": 0, "overwrite": "true"},
                                  content=b"through the fifo", timeout=120)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        for _ in range(5):  # answered while the upload hangs in its thread
            assert st.stat(str(root))["type"] == "dir"
        assert sender.is_alive()
    finally:
        with open(fifo, "rb") as fh:  # un-hang the "file system"
            data = fh.read()
        sender.join(120)
    assert data == b"through the fifo"
    assert result["r"].status_code == 200, result["r"].text
    r = authed.get(url(bridge_url, f"download/{st.sid}"), params={"path": str(fifo)})
    assert r.status_code == 400
