"""Host metrics for the sysinfo plugin: pure parsers plus thin psutil / procfs collectors.

Everything here is synchronous and may block briefly (subprocesses, statvfs), so the plugin
runs it via `asyncio.to_thread`. Parsers take text and return dicts so they can be tested
against recorded tool output. Result shapes are the ones existing clients read.
"""
from __future__ import annotations

import functools
import getpass
import logging
import os
import platform
import shutil
import socket
import subprocess
import threading
import time
from typing import Any, Callable

import psutil

from .parsers import (NVIDIA_QUERY, ROCM_QUERY, block_rotational, classify_fs,
                      cpu_busy_percent, is_shared, parse_cpuinfo, parse_nvidia_smi,
                      parse_rocm_smi, skip_mount)
from .parsers import (  # noqa: F401 -- re-exported
    MIB, SHARED_FSTYPES, PSEUDO_FSTYPES, PSEUDO_MOUNT_PREFIXES)

log = logging.getLogger(__name__)

TOOL_TIMEOUT = 5.0      # seconds for one nvidia-smi / rocm-smi call
STATVFS_TIMEOUT = 2.0   # seconds for one shared mount's usage: a dead NFS server must not hang us


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
                      # what a non-root user can still write (statvfs f_bavail)
                      "available": int(usage.free),
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
    """Full metrics dict (the shape existing clients read); list sections degrade to [] on errors."""
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
