"""Host metrics for the sysinfo plugin: pure parsers plus thin psutil / procfs collectors.

Everything here is synchronous and may block briefly (subprocesses, statvfs), so the plugin
runs it via `asyncio.to_thread`. Parsers take text and return dicts so they can be tested
against recorded tool output. Result shapes follow CONTRACT.md section 6.
"""
from __future__ import annotations

import csv
import functools
import getpass
import io
import json
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import threading
import time
from typing import Any, Callable

import psutil

log = logging.getLogger(__name__)

TOOL_TIMEOUT = 5.0      # seconds for one nvidia-smi / rocm-smi call
STATVFS_TIMEOUT = 2.0   # seconds for one shared mount's usage: a dead NFS server must not hang us
MIB = 1024 * 1024

NVIDIA_QUERY = ["--query-gpu=index,name,utilization.gpu,utilization.memory,memory.total,"
                "memory.used", "--format=csv,noheader,nounits"]
ROCM_QUERY = ["--showid", "--showproductname", "--showuse", "--showmemuse",
              "--showmeminfo", "vram", "--json"]

SHARED_FSTYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "lustre", "gpfs", "mmfs", "beegfs", "dvs",
    "cvmfs", "panfs", "ceph", "cephfs", "glusterfs", "wekafs", "pvfs2", "orangefs", "afs",
    "openafs", "gfs2", "ocfs2", "sshfs", "juicefs", "moosefs", "mfs", "lizardfs", "xtreemfs",
    "quobyte", "vastfs", "davfs", "s3fs", "rclone",
})
PSEUDO_FSTYPES = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore", "ramfs",
    "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs", "nfsd",
    "overlay", "shm", "rootfs", "fuse.lxcfs", "fuse.gvfsd-fuse", "fuse.portal", "fuse.snapfuse",
})
PSEUDO_MOUNT_PREFIXES = ("/proc", "/sys", "/dev", "/snap", "/var/lib/docker",
                         "/var/lib/containers", "/var/lib/kubelet")
_REMOTE_DEVICE = re.compile(r"^(//[^/]+/|[^/\s]+:/)")  # "//srv/share", "host:/export", "ip@o2ib:/fs"

_X86_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon",
                "CentaurHauls": "Centaur"}
_ARM_VENDORS = {"0x41": "ARM", "0x42": "Broadcom", "0x43": "Cavium", "0x46": "Fujitsu",
                "0x48": "HiSilicon", "0x4e": "NVIDIA", "0x50": "Ampere", "0x51": "Qualcomm",
                "0x61": "Apple", "0xc0": "Ampere"}
_ARM_PARTS = {("0x41", "0xd0c"): "Neoverse-N1", ("0x41", "0xd40"): "Neoverse-V1",
              ("0x41", "0xd49"): "Neoverse-N2", ("0x41", "0xd4f"): "Neoverse-V2",
              ("0x46", "0x001"): "A64FX"}


# -- pure parsers ---------------------------------------------------------------------------
def _num(text: Any) -> float:
    """Tolerant float: tools print '[N/A]', 'N/A' or '' for unsupported fields."""
    try:
        return float(str(text).strip())
    except (TypeError, ValueError):
        return 0.0


def parse_nvidia_smi(text: str) -> list[dict]:
    """Rows of `nvidia-smi --query-gpu=index,name,util.gpu,util.mem,mem.total,mem.used` CSV."""
    gpus = []
    for row in csv.reader(io.StringIO(text or ""), skipinitialspace=True):
        if len(row) < 6 or not row[0].strip().isdigit():
            continue  # error banners such as "NVIDIA-SMI has failed ..."
        nums = row[-4:]
        gpus.append({
            "id": row[0].strip(), "index": int(row[0]), "vendor": "NVIDIA",
            "name": ", ".join(c.strip() for c in row[1:-4]),  # a name may hold commas
            "util_gpu": _num(nums[0]), "util_mem": _num(nums[1]),
            "mem_total": int(_num(nums[2])), "mem_used": int(_num(nums[3])),
        })
    return gpus


def _first(info: dict, *keys: str) -> Any:
    """First present, meaningful value among `keys` (rocm-smi renames fields across versions)."""
    for key in keys:
        value = info.get(key)
        if value not in (None, "", "N/A"):
            return value
    return None


def parse_rocm_smi(json_text: str) -> list[dict]:
    """`rocm-smi ... --json` output; tolerates warning lines before and after the JSON."""
    start = (json_text or "").find("{")
    if start < 0:
        return []
    try:
        data, _ = json.JSONDecoder().raw_decode(json_text, start)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    cards = [k for k in data if re.fullmatch(r"card\d+", k) and isinstance(data[k], dict)]
    gpus = []
    for key in sorted(cards, key=lambda k: int(k[4:])):
        info = {k.strip().lower(): v for k, v in data[key].items()}
        total = _num(_first(info, "vram total memory (b)"))
        used = _num(_first(info, "vram total used memory (b)"))
        util_mem = _first(info, "gpu memory use (%)", "gpu memory allocated (vram%)")
        gpus.append({
            "id": key, "index": int(key[4:]), "vendor": "AMD",
            "name": str(_first(info, "card series", "device name", "card model", "card sku")
                        or "AMD GPU"),
            "util_gpu": _num(_first(info, "gpu use (%)")),
            "util_mem": _num(util_mem) if util_mem is not None else
            (round(100.0 * used / total, 1) if total else 0.0),
            "mem_total": int(total // MIB), "mem_used": int(used // MIB),
        })
    return gpus


def parse_cpuinfo(text: str) -> dict:
    """Model, vendor and MHz from /proc/cpuinfo (x86 'model name', ARM implementer, POWER 'cpu')."""
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    impl, part = fields.get("CPU implementer", "").lower(), fields.get("CPU part", "").lower()
    model = fields.get("model name") or fields.get("cpu") or _ARM_PARTS.get((impl, part), "")
    vendor = (_X86_VENDORS.get(fields.get("vendor_id", ""), fields.get("vendor_id", ""))
              or _ARM_VENDORS.get(impl, "") or ("IBM" if "POWER" in model.upper() else ""))
    if not model and vendor:
        model = f"{vendor} {part}".strip()
    mhz = _num(fields.get("cpu MHz") or fields.get("clock", "").removesuffix("MHz"))
    return {"model": model, "vendor": vendor, "mhz": mhz}


def cpu_busy_percent(t1: Any, t2: Any) -> float:
    """CPU busy % between two `psutil.cpu_times()` samples (idle and iowait count as free)."""
    def split(t: Any) -> tuple[float, float]:
        d = t._asdict() if hasattr(t, "_asdict") else dict(t)
        total = sum(d.values()) - d.get("guest", 0.0) - d.get("guest_nice", 0.0)
        return total, total - d.get("idle", 0.0) - d.get("iowait", 0.0)
    (tot1, busy1), (tot2, busy2) = split(t1), split(t2)
    if tot2 - tot1 <= 0:
        return 0.0
    return round(min(100.0, max(0.0, 100.0 * (busy2 - busy1) / (tot2 - tot1))), 1)


def is_shared(fstype: str, device: str) -> bool:
    """Network / parallel filesystem by type (incl. 'fuse.X', 'nfs*') or by a remote device."""
    fs = (fstype or "").lower().removeprefix("fuse.")
    return (fs in SHARED_FSTYPES or fs.startswith("nfs")
            or bool(_REMOTE_DEVICE.match(device or "")))


def classify_fs(fstype: str, device: str, rotational: bool | None) -> str:
    """'shared', 'local ssd', 'local hdd' or 'local' (rotational unknown)."""
    if is_shared(fstype, device):
        return "shared"
    if rotational is None:
        return "local"
    return "local hdd" if rotational else "local ssd"


def skip_mount(fstype: str, mount: str) -> bool:
    """Pseudo, container and snap mounts are noise; '/' is kept whatever backs it."""
    if mount == "/":
        return False
    if (fstype or "").lower() in PSEUDO_FSTYPES:
        return True
    return any(mount == p or mount.startswith(p + "/") for p in PSEUDO_MOUNT_PREFIXES)


def block_rotational(device: str, sys_root: str = "/sys",
                     st_dev: int | None = None) -> bool | None:
    """Rotational flag of the block device (or a partition's parent); None if unknown."""
    nodes = []
    if (device or "").startswith("/dev/"):
        name = os.path.basename(os.path.realpath(device))  # /dev/mapper/x -> dm-0
        nodes.append(os.path.join(sys_root, "class", "block", name))
    if st_dev:
        nodes.append(os.path.join(sys_root, "dev", "block",
                                  f"{os.major(st_dev)}:{os.minor(st_dev)}"))
    for node in nodes:
        real = os.path.realpath(node)
        for base in (real, os.path.dirname(real)):
            try:
                with open(os.path.join(base, "queue", "rotational")) as fh:
                    return fh.read().strip() == "1"
            except OSError:
                continue
    return None


# -- collectors -----------------------------------------------------------------------------
_pending: dict[str, threading.Thread] = {}
_pending_lock = threading.Lock()


def _call_with_timeout(key: str, fn: Callable[[], Any], timeout: float) -> Any:
    """Run `fn` in a daemon thread; None on timeout, and no new call while one still hangs."""
    with _pending_lock:
        if key in _pending and _pending[key].is_alive():
            return None
    box: list = [None]

    def run() -> None:
        try:
            box[0] = fn()
        except Exception:
            pass

    thread = threading.Thread(target=run, name=f"sysinfo:{key}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning("sysinfo: %s did not answer within %.1fs, skipping it", key, timeout)
        with _pending_lock:
            _pending[key] = thread
        return None
    return box[0]


def _usage(mount: str) -> Any:
    """statvfs of a directory mount point (docker bind-mounts files like /etc/hosts)."""
    try:
        return psutil.disk_usage(mount) if os.path.isdir(mount) else None
    except OSError:
        return None


@functools.lru_cache(maxsize=1024)
def _disk_type(device: str, fstype: str, mount: str) -> str:
    """Cached: the kind of a mount does not change while it stays mounted."""
    if is_shared(fstype, device):
        return "shared"
    st_dev = None
    if device.startswith("/dev/"):  # only block devices: stat on a fuse mount may hang
        try:
            st_dev = os.stat(mount).st_dev
        except OSError:
            pass
    return classify_fs(fstype, device, block_rotational(device, st_dev=st_dev))


def collect_disks() -> list[dict]:
    """Real filesystems; a later mount on the same point hides the earlier one."""
    visible: dict[str, Any] = {}
    for part in psutil.disk_partitions(all=True):  # all=False drops nfs, lustre, ... ('nodev')
        visible[part.mountpoint] = None if skip_mount(part.fstype, part.mountpoint) else part
    disks = []
    for mount, part in sorted((m, p) for m, p in visible.items() if p is not None):
        kind = _disk_type(part.device or "", part.fstype or "", mount)
        remote = kind == "shared" or not (part.device or "").startswith("/dev/")  # may hang
        usage = (_call_with_timeout(f"statvfs {mount}", lambda m=mount: _usage(m),
                                    STATVFS_TIMEOUT) if remote else _usage(mount))
        if usage is None or not usage.total:
            continue
        disks.append({"mount": mount, "device": part.device or "", "fstype": part.fstype or "",
                      "type": kind, "total": int(usage.total), "used": int(usage.used),
                      "percent": float(usage.percent)})
    return disks


def collect_network() -> list[dict]:
    """Up, non-loopback interfaces that carry an address (IPv4 preferred)."""
    stats, counters = psutil.net_if_stats(), psutil.net_io_counters(pernic=True)
    nets = []
    for iface, addrs in psutil.net_if_addrs().items():
        st = stats.get(iface)
        if iface == "lo" or (st and (not st.isup or "loopback" in getattr(st, "flags", ""))):
            continue
        v4 = [a.address for a in addrs if a.family == socket.AF_INET]
        v6 = [a.address.split("%")[0] for a in addrs
              if a.family == socket.AF_INET6 and not a.address.lower().startswith("fe80")]
        macs = [a.address for a in addrs if a.family == psutil.AF_LINK]
        if not (v4 or v6):
            continue
        io_ = counters.get(iface)
        nets.append({"interface": iface, "ip": (v4 or v6)[0], "mac": macs[0] if macs else "",
                     "rx_bytes": int(io_.bytes_recv) if io_ else 0,
                     "tx_bytes": int(io_.bytes_sent) if io_ else 0,
                     "speed_mbps": int(st.speed) if st else 0,
                     "mtu": int(st.mtu) if st else 0})
    return nets


@functools.lru_cache(maxsize=4)
def _which(name: str) -> str | None:
    """Cached PATH lookup; `NVIDIA_SMI_PATH` / `ROCM_SMI_PATH` override like the original."""
    override = os.environ.get(name.upper().replace("-", "_") + "_PATH")
    return shutil.which(override or name)


def run_tool(name: str, args: list[str], timeout: float = TOOL_TIMEOUT) -> str:
    """stdout of a GPU tool, '' when absent, failing or slow (never raises)."""
    exe = _which(name)
    if not exe:
        return ""
    try:
        res = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                             check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("sysinfo: %s failed: %s", name, exc)
        return ""
    return res.stdout or ""  # parsers reject error banners, rocm-smi may exit != 0 with data


def collect_gpus() -> list[dict]:
    """NVIDIA and AMD GPUs with live utilisation; [] without the vendor tools."""
    return (parse_nvidia_smi(run_tool("nvidia-smi", NVIDIA_QUERY))
            + parse_rocm_smi(run_tool("rocm-smi", ROCM_QUERY)))


@functools.lru_cache(maxsize=1)
def _static_info() -> dict:
    """Facts that do not change while the edge runs (parsing cpuinfo is slow on big nodes)."""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = parse_cpuinfo(fh.read())
    except OSError:
        cpu = {"model": "", "vendor": "", "mhz": 0.0}
    try:
        os_name = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        os_name = ""
    uname = platform.uname()
    return {"cpu_model": cpu["model"] or platform.processor() or uname.machine or "unknown",
            "cpu_vendor": cpu["vendor"] or "unknown", "cpu_mhz": cpu["mhz"],
            "hostname": socket.gethostname(), "kernel": f"{uname.system} {uname.release}",
            "arch": uname.machine, "os": os_name or uname.system}


_cpu_lock = threading.Lock()
_cpu_state: dict[str, Any] = {"times": None, "at": 0.0, "percent": 0.0}


def cpu_percent() -> float:
    """CPU % since the previous call by any thread (psutil's own state is per thread)."""
    with _cpu_lock:
        prev = _cpu_state["times"]
        if prev is None:  # unprimed: take a short sample rather than answer 0
            prev = psutil.cpu_times()
            time.sleep(0.1)
        elif time.monotonic() - _cpu_state["at"] < 0.05:
            return _cpu_state["percent"]
        now = psutil.cpu_times()
        _cpu_state.update(times=now, at=time.monotonic(), percent=cpu_busy_percent(prev, now))
        return _cpu_state["percent"]


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return ""


def collect_metrics() -> dict:
    """Full metrics dict of CONTRACT.md section 6; list sections degrade to [] on errors."""
    static = _static_info()
    boot = psutil.boot_time()
    freq = None
    try:
        freq = psutil.cpu_freq()
    except Exception:  # missing cpufreq in some VMs / containers
        pass
    mem = psutil.virtual_memory()
    try:
        load = [float(x) for x in os.getloadavg()]
    except OSError:
        load = [0.0, 0.0, 0.0]
    return {
        "system": {"hostname": static["hostname"], "uptime": round(time.time() - boot, 1),
                   "kernel": static["kernel"], "arch": static["arch"], "os": static["os"],
                   "user": _user(), "boot_time": boot},
        "cpu": {"model": static["cpu_model"], "vendor": static["cpu_vendor"],
                "cores_physical": psutil.cpu_count(logical=False) or psutil.cpu_count() or 0,
                "cores_logical": psutil.cpu_count() or 0, "percent": cpu_percent(),
                "load_avg": load,
                "freq_mhz": float(freq.current) if freq and freq.current else static["cpu_mhz"]},
        "memory": {"total": int(mem.total), "available": int(mem.available),
                   "used": int(mem.used), "percent": float(mem.percent)},
        "disks": _safe(collect_disks),
        "network": _safe(collect_network),
        "gpus": _safe(collect_gpus),
    }


def _safe(fn: Callable[[], list]) -> list:
    """One broken section (odd mount, driver hiccup) must not fail the whole answer."""
    try:
        return fn()
    except Exception:
        log.exception("sysinfo: %s failed", fn.__name__)
        return []


def homedir() -> dict:
    """Home of the edge process; `homedir` is the key existing clients read."""
    home = os.path.expanduser("~")
    return {"homedir": home, "home": home, "user": _user()}


def warm_up() -> None:
    """Fill the caches and the CPU sample so the first real request is fast and meaningful."""
    with _cpu_lock:
        if _cpu_state["times"] is None:
            _cpu_state.update(times=psutil.cpu_times(), at=time.monotonic())
    _static_info()
    for fn in (collect_disks, collect_gpus):
        _safe(fn)


def start_prefetch() -> threading.Thread:
    """Run `warm_up` in a daemon thread (GPU tools can take seconds on first call)."""
    thread = threading.Thread(target=warm_up, name="sysinfo-prefetch", daemon=True)
    thread.start()
    return thread
