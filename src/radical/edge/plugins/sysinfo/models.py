"""Answer shapes of the sysinfo routes (CONTRACT section 6), for the API description."""
from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict


class System(TypedDict):
    hostname: str
    uptime: float
    kernel: str
    arch: str
    os: str
    user: str
    boot_time: float


class Cpu(TypedDict):
    model: str
    vendor: str
    cores_physical: int
    cores_logical: int
    percent: float
    load_avg: list[float]  # 1, 5, 15 min
    freq_mhz: float


class Memory(TypedDict):  # bytes
    total: int
    available: int
    used: int
    percent: float


class Disk(TypedDict):
    mount: str
    device: str
    fstype: str
    type: str  # "shared" (Lustre, GPFS, NFS, ...), "local ssd", "local hdd" or "local"
    total: int
    used: int
    percent: float


class Network(TypedDict):
    interface: str
    ip: str
    mac: str
    rx_bytes: int
    tx_bytes: int
    speed_mbps: int
    mtu: int


class Metrics(TypedDict):
    system: System
    cpu: Cpu
    memory: Memory
    disks: list[Disk]
    network: list[Network]
    gpus: list[dict[str, Any]]  # id, name, util_gpu, util_mem, mem_total/used (MiB), vendor


class HomeDir(TypedDict):
    homedir: str
    home: str
    user: str


class HostRole(TypedDict):
    role: str  # "login" | "compute" | "bridge"
    scheduler: str | None
    job_id: str | None
