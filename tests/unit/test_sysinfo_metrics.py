"""sysinfo edge side: parsers on recorded tool output, fs classification, live collection."""
from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import stat
import threading
import time
import types

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request

from radical.edge.plugins.sysinfo import metrics as m
from radical.edge.plugins.sysinfo.plugin import SysInfoPlugin

# `nvidia-smi --query-gpu=index,name,utilization.gpu,utilization.memory,memory.total,
# memory.used --format=csv,noheader,nounits` on a mixed node; GPU 2 is a MIG parent.
NVIDIA_CSV = """\
0, NVIDIA A100-SXM4-40GB, 0, 0, 40960, 0
1, NVIDIA A100-SXM4-40GB, 97, 63, 40960, 38211
2, NVIDIA A100-SXM4-40GB, [N/A], [N/A], 40960, 13
3, NVIDIA H100 80GB HBM3, 45, 12, 81559, 1024
"""
NVIDIA_FAILED = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                 "driver. Make sure that the latest NVIDIA driver is installed and running.\n")

# ROCm 5.x (Frontier MI250X GCDs): lower-case "Card series", "GPU memory use (%)".
ROCM5_JSON = json.dumps({
    "card0": {"GPU ID": "0x7408", "GPU use (%)": "12", "GFX Activity": "1174987345",
              "GPU memory use (%)": "3", "Memory Activity": "1023485643",
              "VRAM Total Memory (B)": "68702699520", "VRAM Total Used Memory (B)": "11636736",
              "Card series": "AMD INSTINCT MI250X", "Card model": "0x0b0c",
              "Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "D65209"},
    "card1": {"GPU ID": "0x7408", "GPU use (%)": "100", "GPU memory use (%)": "71",
              "VRAM Total Memory (B)": "68702699520",
              "VRAM Total Used Memory (B)": "48855252992",
              "Card series": "AMD INSTINCT MI250X", "Card model": "0x0b0c"},
})
# ROCm 6.x (MI300X): "Device Name", "GPU Memory Allocated (VRAM%)", a warning on stdout first
# and a "system" block; card10 must sort after card2.
ROCM6_OUT = "WARNING: AMD GPU device(s) is/are in a low-power state. Check power control\n" + \
    json.dumps({
        "card2": {"Device Name": "AMD Instinct MI300X", "Device ID": "0x74a1",
                  "GPU use (%)": "5", "GPU Memory Allocated (VRAM%)": "1",
                  "Memory Activity": "N/A", "VRAM Total Memory (B)": "205822885888",
                  "VRAM Total Used Memory (B)": "296087552", "Card Series": "N/A",
                  "Card Model": "0x74a1", "GFX Version": "gfx942"},
        "card10": {"Device Name": "AMD Instinct MI300X", "GPU use (%)": "0",
                   "VRAM Total Memory (B)": "205822885888",
                   "VRAM Total Used Memory (B)": "102911442944"},
        "system": {"Driver version": "6.7.0"},
    })

CPUINFO_X86 = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n" \
    "model name\t: Intel(R) Xeon(R) Platinum 8480+\ncpu MHz\t\t: 2000.000\n\nprocessor\t: 1\n" \
    "vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
CPUINFO_GRACE = "processor\t: 0\nBogoMIPS\t: 2000.00\nFeatures\t: fp asimd sve2\n" \
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd4f\n"
CPUINFO_POWER = "processor\t: 0\ncpu\t\t: POWER9, altivec supported\nclock\t\t: 3800.000000MHz\n" \
    "revision\t: 2.3 (pvr 004e 1203)\n\ntimebase\t: 512000000\nplatform\t: PowerNV\n"


# -- GPU parsers ----------------------------------------------------------------------------
def test_nvidia_rows_become_typed_gpus():
    gpus = m.parse_nvidia_smi(NVIDIA_CSV)
    rows = [[c.strip() for c in line.split(",")] for line in NVIDIA_CSV.splitlines()]
    assert [g["id"] for g in gpus] == [r[0] for r in rows]
    for gpu, row in zip(gpus, rows):
        assert gpu["vendor"] == "NVIDIA" and gpu["name"] == row[1]
        assert gpu["mem_total"] == int(row[4]) and gpu["mem_used"] == int(row[5])
        assert isinstance(gpu["mem_total"], int) and isinstance(gpu["util_gpu"], float)
    assert gpus[1]["util_gpu"] == 97.0 and gpus[1]["util_mem"] == 63.0
    assert gpus[2]["util_gpu"] == 0.0 and gpus[2]["util_mem"] == 0.0  # [N/A]


def test_nvidia_name_with_commas_and_garbage():
    assert m.parse_nvidia_smi(NVIDIA_FAILED) == []
    assert m.parse_nvidia_smi("No devices were found\n") == []
    assert m.parse_nvidia_smi("") == []
    (gpu,) = m.parse_nvidia_smi("7, Tesla V100, PCIe, 16GB, 12, 3, 16160, 300\n")
    assert gpu["name"] == "Tesla V100, PCIe, 16GB" and gpu["index"] == 7
    assert gpu["mem_used"] == 300


def test_rocm5_json():
    gpus = m.parse_rocm_smi(ROCM5_JSON)
    data = json.loads(ROCM5_JSON)
    assert [g["id"] for g in gpus] == ["card0", "card1"]
    for gpu in gpus:
        info = data[gpu["id"]]
        assert gpu["vendor"] == "AMD" and gpu["name"] == info["Card series"]
        assert gpu["mem_total"] == int(info["VRAM Total Memory (B)"]) // 2**20
        assert gpu["mem_used"] == int(info["VRAM Total Used Memory (B)"]) // 2**20
        assert gpu["util_gpu"] == float(info["GPU use (%)"])
        assert gpu["util_mem"] == float(info["GPU memory use (%)"])


def test_rocm6_warning_prefix_order_and_fallbacks():
    gpus = m.parse_rocm_smi(ROCM6_OUT)
    assert [g["index"] for g in gpus] == [2, 10]
    assert gpus[0]["name"] == "AMD Instinct MI300X"  # "Card Series": "N/A" is skipped
    assert gpus[0]["util_mem"] == 1.0
    # no %-of-memory field: derived from used / total
    assert gpus[1]["util_mem"] == pytest.approx(50.0, abs=0.1)


@pytest.mark.parametrize("text", ["", "ERROR: GPU[0] : Unable to open\n", "{not json",
                                  "[1, 2]", '{"system": {"Driver version": "6.7"}}'])
def test_rocm_garbage_gives_empty(text):
    assert m.parse_rocm_smi(text) == []


# -- tools on PATH --------------------------------------------------------------------------
def _fake_tool(tmp_path, name, body):
    """A shell script; only builtins work as PATH holds nothing but `tmp_path`."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    for var in ("NVIDIA_SMI_PATH", "ROCM_SMI_PATH"):
        monkeypatch.delenv(var, raising=False)
    m._which.cache_clear()
    yield tmp_path
    m._which.cache_clear()


def test_collect_gpus_runs_both_tools(fake_path):
    expect = " ".join(m.NVIDIA_QUERY)
    _fake_tool(fake_path, "nvidia-smi",
               f'[ "$*" = "{expect}" ] || exit 3\nprintf %s \'{NVIDIA_CSV}\'\n')
    _fake_tool(fake_path, "rocm-smi", f"printf %s '{ROCM6_OUT}'\nexit 2\n")
    gpus = m.collect_gpus()
    assert [g["vendor"] for g in gpus] == ["NVIDIA"] * 4 + ["AMD"] * 2


def test_no_tools_means_no_gpus(fake_path):
    assert m.collect_gpus() == []


@pytest.mark.timeout(30)
def test_slow_tool_times_out(fake_path):
    _fake_tool(fake_path, "nvidia-smi", "while :; do :; done\n")
    start = time.monotonic()
    assert m.run_tool("nvidia-smi", m.NVIDIA_QUERY, timeout=0.3) == ""
    assert time.monotonic() - start < 5


# -- filesystems ----------------------------------------------------------------------------
@pytest.mark.parametrize("fstype,device", [
    ("lustre", "10.1.0.1@o2ib:10.1.0.2@o2ib:/scratch"), ("gpfs", "gpfs0"), ("GPFS", "fs1"),
    ("nfs4", "nas:/home"), ("nfs", "10.0.0.5:/export/apps"), ("beegfs", "beegfs_nodev"),
    ("cifs", "//winsrv/share"), ("fuse.glusterfs", "gl1:/vol"), ("dvs", "/opt/cray"),
    ("wekafs", "default"), ("ceph", "10.0.0.1:6789:/"), ("ext4", "nas01:/exports/x"),
])
def test_shared_filesystems(fstype, device):
    assert m.classify_fs(fstype, device, rotational=False) == "shared"


@pytest.mark.parametrize("rotational,expect", [
    (False, "local ssd"), (True, "local hdd"), (None, "local")])
def test_local_filesystems(rotational, expect):
    for fstype, device in [("ext4", "/dev/nvme0n1p2"), ("xfs", "/dev/mapper/vg-root"),
                           ("overlay", "overlay"), ("zfs", "tank/home")]:
        assert m.classify_fs(fstype, device, rotational) == expect


@pytest.mark.parametrize("fstype,mount,skip", [
    ("proc", "/proc", True), ("sysfs", "/sys", True), ("tmpfs", "/dev/shm", True),
    ("cgroup2", "/sys/fs/cgroup", True), ("squashfs", "/snap/core20/1974", True),
    ("ext4", "/snap/foo", True), ("overlay", "/", False), ("tmpfs", "/", False),
    ("overlay", "/var/lib/docker/overlay2/abc/merged", True), ("ext4", "/home", False),
    ("lustre", "/lustre/orion", False), ("ext4", "/devdata", False), ("autofs", "/net", True),
])
def test_skip_mount(fstype, mount, skip):
    assert m.skip_mount(fstype, mount) is skip


def test_block_rotational_from_fake_sysfs(tmp_path):
    sysfs = tmp_path / "sys"
    disk = sysfs / "devices" / "pci0" / "sda"
    (disk / "sda1").mkdir(parents=True)
    (disk / "queue").mkdir()
    (disk / "queue" / "rotational").write_text("1\n")
    nvme = sysfs / "devices" / "pci1" / "nvme0n1"
    (nvme / "queue").mkdir(parents=True)
    (nvme / "queue" / "rotational").write_text("0\n")
    (sysfs / "class" / "block").mkdir(parents=True)
    (sysfs / "dev" / "block").mkdir(parents=True)
    for name, target in [("sda", disk), ("sda1", disk / "sda1"), ("nvme0n1", nvme)]:
        (sysfs / "class" / "block" / name).symlink_to(target)
    (sysfs / "dev" / "block" / "259:0").symlink_to(nvme)
    root = str(sysfs)
    assert m.block_rotational("/dev/sda1", root) is True   # partition -> parent's queue
    assert m.block_rotational("/dev/nvme0n1", root) is False
    assert m.block_rotational("/dev/root", root, st_dev=os.makedev(259, 0)) is False
    assert m.block_rotational("/dev/nope", root) is None
    assert m.block_rotational("nas:/home", root) is None


def test_hung_statvfs_is_skipped_not_repeated():
    gate, calls = threading.Event(), []

    def hang():
        calls.append(1)
        gate.wait(10)
        return "late"

    assert m._call_with_timeout("test-mount", hang, 0.1) is None
    assert m._call_with_timeout("test-mount", hang, 0.1) is None  # still hanging: no new thread
    assert len(calls) == 1
    gate.set()
    m._pending["test-mount"].join(5)
    assert m._call_with_timeout("test-mount", lambda: "ok", 5) == "ok"


# -- cpu ------------------------------------------------------------------------------------
def test_parse_cpuinfo_flavours():
    x86 = m.parse_cpuinfo(CPUINFO_X86)
    assert x86 == {"model": "Intel(R) Xeon(R) Platinum 8480+", "vendor": "Intel", "mhz": 2000.0}
    grace = m.parse_cpuinfo(CPUINFO_GRACE)
    assert grace["vendor"] == "ARM" and grace["model"] == "Neoverse-V2"
    power = m.parse_cpuinfo(CPUINFO_POWER)
    assert power["vendor"] == "IBM" and power["model"].startswith("POWER9")
    assert power["mhz"] == 3800.0
    assert m.parse_cpuinfo("") == {"model": "", "vendor": "", "mhz": 0.0}


def test_cpu_busy_percent():
    T = collections.namedtuple("T", "user nice system idle iowait guest")
    t1 = T(100, 0, 50, 800, 50, 0)
    # +30 user, +10 system, +40 idle, +20 iowait (free), +10 guest (already inside user)
    t2 = T(130, 0, 60, 840, 70, 10)
    assert m.cpu_busy_percent(t1, t2) == pytest.approx(100 * 40 / 100)
    assert m.cpu_busy_percent(t1, t1) == 0.0


def test_cpu_percent_shared_across_threads():
    m._cpu_state["times"] = None
    start = time.monotonic()
    first = m.cpu_percent()  # unprimed: short blocking sample
    assert 0.09 <= time.monotonic() - start < 1 and 0.0 <= first <= 100.0
    start = time.monotonic()
    asyncio.run(asyncio.to_thread(m.cpu_percent))  # another thread reuses the shared sample
    assert time.monotonic() - start < 0.09


# -- live collection ------------------------------------------------------------------------
def _check_types(obj: dict, spec: dict) -> None:
    for key, typ in spec.items():
        assert key in obj, key
        assert isinstance(obj[key], typ), (key, obj[key])


def test_collect_metrics_on_this_host():
    data = m.collect_metrics()
    json.dumps(data)
    assert {"system", "cpu", "memory", "disks", "network", "gpus"} <= set(data)
    _check_types(data["system"], {"hostname": str, "uptime": float, "kernel": str, "arch": str})
    assert data["system"]["hostname"] and data["system"]["uptime"] > 0
    cpu = data["cpu"]
    _check_types(cpu, {"model": str, "vendor": str, "cores_physical": int, "cores_logical": int,
                       "percent": float, "load_avg": list, "freq_mhz": float})
    assert cpu["cores_logical"] >= cpu["cores_physical"] >= 1 and cpu["model"]
    assert len(cpu["load_avg"]) == 3 and all(isinstance(x, float) for x in cpu["load_avg"])
    mem = data["memory"]
    _check_types(mem, {"total": int, "available": int, "used": int, "percent": float})
    assert mem["total"] > 0 and 0 <= mem["used"] <= mem["total"]
    assert data["disks"], "at least the root filesystem"
    assert "/" in [d["mount"] for d in data["disks"]]
    for disk in data["disks"]:
        _check_types(disk, {"mount": str, "device": str, "fstype": str, "type": str,
                            "total": int, "used": int, "available": int, "percent": float})
        assert disk["type"] in {"shared", "local ssd", "local hdd", "local"}
        assert 0 <= disk["available"] <= disk["total"] - disk["used"]  # root's reserve aside
        if disk["mount"] == "/":  # others write meanwhile: within 1 % of the disk
            st = os.statvfs("/")
            assert abs(disk["available"] - st.f_bavail * st.f_frsize) <= disk["total"] / 100
        assert disk["total"] > 0 and disk["fstype"]
    for net in data["network"]:
        _check_types(net, {"interface": str, "ip": str, "mac": str, "rx_bytes": int,
                           "tx_bytes": int, "speed_mbps": int})
        assert net["interface"] != "lo" and net["ip"]
    if not any(shutil.which(tool) for tool in ("nvidia-smi", "rocm-smi", "amd-smi")):
        assert data["gpus"] == []  # no GPU tool here: nothing may be invented
    else:
        assert data["gpus"], "a GPU tool is installed but no GPU was reported"
    for gpu in data["gpus"]:
        _check_types(gpu, {"name": str, "vendor": str, "mem_total": int, "mem_used": int})
        assert {"id", "util_gpu", "util_mem"} <= set(gpu)


def test_homedir():
    assert m.homedir()["homedir"] == os.path.expanduser("~")


# -- plugin wiring --------------------------------------------------------------------------
class FakeHost:
    edge_name, role, settings = "e1", "compute", None

    def __init__(self) -> None:
        self.state = types.SimpleNamespace(scheduler="slurm", job_id="4711")
        self.routes: dict[tuple[str, str], object] = {}

    def add_route(self, method, path, handler):
        self.routes[(method, path)] = handler

    def notify(self, plugin, topic, data):
        pass


def _request(path_params=None) -> Request:
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"",
             "path_params": path_params or {}}
    return Request(scope, receive)


def test_plugin_routes_and_session():
    host = FakeHost()
    plugin = SysInfoPlugin(host)
    route = lambda p: host.routes[("GET", f"/sysinfo/{p}")]  # noqa: E731

    async def scenario():
        role = await route("host_role")(_request())
        assert role == {"role": "compute", "scheduler": "slurm", "job_id": "4711"}
        assert (await route("homedir")(_request()))["homedir"] == os.path.expanduser("~")
        sid = (await plugin.register_session(_request()))["sid"]
        data = await route("metrics/{sid}")(_request({"sid": sid}))
        assert data["memory"]["total"] > 0
        with pytest.raises(HTTPException) as err:
            await route("metrics/{sid}")(_request({"sid": "session.nope"}))
        assert err.value.status_code == 404

    asyncio.run(scenario())
    assert plugin.describe()["client"] == "radical.edge.plugins.sysinfo.client:SysInfoClient"
    assert plugin.ui_config["monitors"][0]["type"] == "metrics"
