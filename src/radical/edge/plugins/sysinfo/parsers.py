"""Pure parsers and classifiers behind sysinfo metrics (no I/O beyond /sys reads).

Kept apart from the collectors so recorded outputs of nvidia-smi, rocm-smi and
/proc/cpuinfo from many machines can be tested without those machines.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from typing import Any

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
