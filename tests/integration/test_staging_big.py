"""A 1 GiB file through the bridge and back with bounded memory on bridge and edge.

A fresh bridge and edge carry the transfer so their peak RSS (VmHWM) measures it alone;
neither may grow anywhere near the file's size (the body is relayed chunk by chunk through
Redis and written/read in 1 MiB blocks off the edge loop).
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path


from radical.edge import BridgeClient

SIZE = 1024 * 1024 * 1024
#: peak RSS either process may reach: well below the file's size
RSS_LIMIT_MB = 400


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a process (kB in /proc/<pid>/status) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(8 * 1024 * 1024)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            part = block[:min(len(block), left)]
            fh.write(part)
            digest.update(part)
            left -= len(part)
            block = block[1:] + block[:1]  # not one block repeated: a misplaced chunk shows
    return digest.hexdigest()


def test_one_gib_round_trip_bounded_memory(make_bridge, make_edge, tmp_path: Path) -> None:
    bridge = make_bridge()
    root = Path(os.path.realpath(tmp_path)) / "root"
    root.mkdir()
    edge = make_edge(plugins="staging", name="stagebig",
                     env={"RADICAL_EDGE_STAGING_ROOTS": str(root)})
    src = tmp_path / "one-gib.bin"
    digest = make_file(src, SIZE)
    client = BridgeClient(bridge.extra["url"])
    try:
        st = client.get_edge_client("stagebig").get_plugin("staging")
        t0 = time.monotonic()
        up = st.upload(str(src), str(root / "copy.bin"))
        t1 = time.monotonic()
        assert up["size"] == SIZE and up["sha256"] == digest
        back = tmp_path / "back.bin"
        down = st.download(str(root / "copy.bin"), str(back))
        t2 = time.monotonic()
        assert down["size"] == SIZE and down["sha256"] == digest
        assert back.stat().st_size == SIZE
        st.close()
    finally:
        client.close()
    bridge_mb, edge_mb = vm_hwm_mb(bridge.pid), vm_hwm_mb(edge.pid)
    print(f"\n1 GiB: upload {SIZE / 2**20 / (t1 - t0):.0f} MiB/s, download "
          f"{SIZE / 2**20 / (t2 - t1):.0f} MiB/s; peak RSS bridge {bridge_mb:.0f} MiB, "
          f"edge {edge_mb:.0f} MiB")
    assert bridge_mb < RSS_LIMIT_MB, f"bridge peak RSS {bridge_mb:.0f} MiB"
    assert edge_mb < RSS_LIMIT_MB, f"edge peak RSS {edge_mb:.0f} MiB"
