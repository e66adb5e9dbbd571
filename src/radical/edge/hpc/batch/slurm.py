"""SLURM: detection and the allocation this process runs in.

SLURM exports most of what an allocation summary needs (SLURM_JOB_*); only the time limit
and the time left need the controller (`squeue -o %L|%l`, falling back to `scontrol`).
The time and host-list helpers here are shared with the queue_info SLURM backend.
"""
from __future__ import annotations

import getpass
import os
import re
from typing import Mapping

from .base import BatchSystem, as_int, make_allocation, which
from .registry import register

_UNLIMITED = {"", "UNLIMITED", "INFINITE", "NOT_SET", "N/A", "NONE", "(NULL)", "INVALID"}


def parse_slurm_time(text: str | None) -> int | None:
    """SLURM duration ('D-HH:MM:SS', 'HH:MM:SS', 'MM:SS', 'MM') -> seconds; None = unlimited.

    Garbage also gives None: an unknown limit must not look like zero seconds.
    """
    if text is None:
        return None
    s = str(text).strip()
    if s.upper() in _UNLIMITED:
        return None
    days = 0
    if "-" in s:
        head, _, s = s.partition("-")
        if not head.isdigit():
            return None
        days = int(head)
    parts = s.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        return None
    nums = [int(p) for p in parts]
    if len(nums) == 1:  # bare number: minutes (or hours with a day prefix)
        h, m, sec = (nums[0], 0, 0) if days else (0, nums[0], 0)
    elif len(nums) == 2:  # MM:SS, or HH:MM with a day prefix
        h, m, sec = (nums[0], nums[1], 0) if days else (0, nums[0], nums[1])
    else:
        h, m, sec = nums
    return days * 86400 + h * 3600 + m * 60 + sec


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets: 'a[1-2],b' -> ['a[1-2]', 'b']."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p for p in out if p]


def expand_hostlist(text: str | None) -> list[str]:
    """Expand a SLURM host list ('n[01-03,7],gpu1') into host names, order kept."""
    hosts: list[str] = []
    for part in _split_top((text or "").strip()):
        m = re.search(r"\[([^\]]*)\]", part)
        if not m:
            hosts.append(part)
            continue
        head, tail = part[:m.start()], part[m.end():]
        for rng in m.group(1).split(","):
            lo, _, hi = rng.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                continue
            width = len(lo)
            for n in range(int(lo), int(hi or lo) + 1):
                hosts.extend(expand_hostlist(f"{head}{n:0{width}d}{tail}"))
    return hosts


def gpus_from_text(text: str | None) -> int | None:
    """GPU count from 'gpu:a100:4(S:0-1)', 'gres/gpu=4', 'a100:4' or '4'."""
    if not text:
        return None
    items = [re.sub(r"\(.*?\)", "", i).strip() for i in _split_top(str(text))]
    items = [i for i in items if i and i.upper() not in _UNLIMITED]
    if len(items) == 1 and "gpu" not in items[0]:  # env style: '4' or 'a100:4'
        m = re.fullmatch(r"(?:[\w.-]+:)?(\d+)", items[0])
        return int(m.group(1)) if m else None
    untyped = [i for i in items if re.fullmatch(r"gres/gpu=\d+", i)]
    total, found = 0, False
    for item in untyped or [i for i in items if "gpu" in i]:
        m = re.search(r"(\d+)$", item)
        if m:
            total += int(m.group(1))
            found = True
    return total if found else None


def parse_kv_line(line: str) -> dict[str, str]:
    """`scontrol show ... -o` line -> dict; values may contain spaces ('OS=Linux 6.1 #1')."""
    pairs = re.finditer(r"(?:^|\s)([A-Za-z][\w/:.]*)=(.*?)(?=\s+[A-Za-z][\w/:.]*=|\s*$)",
                        line.strip())
    return {m.group(1): m.group(2).strip() for m in pairs}


def parse_sinfo_partitions(text: str) -> list[dict]:
    """`sinfo -h -o '%P|%c|%G|%l'` -> partitions (`BatchSystem.partitions` shape)."""
    parts: dict[str, dict] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4 or not fields[0].strip("*"):
            continue
        name, cpus, gres, limit = fields
        part = parts.setdefault(name.strip("*"), {
            "name": name.strip("*"), "default": name.endswith("*"), "cpus_per_node": None,
            "gpus_per_node": None, "max_minutes": None})
        seconds = parse_slurm_time(limit)
        part["max_minutes"] = seconds // 60 if seconds is not None else None
        for key, value in (("cpus_per_node", as_int(cpus)), ("gpus_per_node",
                                                             gpus_from_text(gres) or 0)):
            if value is not None:
                part[key] = value if part[key] is None else min(part[key], value)
    return list(parts.values())


@register
class SlurmBatchSystem(BatchSystem):
    name = "slurm"
    psij_executor = "slurm"
    priority = 10
    job_id_vars = ("SLURM_JOB_ID", "SLURM_JOBID")

    @classmethod
    def available(cls, env: Mapping[str, str] | None = None) -> bool:
        return bool(which("squeue", env) and which("sinfo", env)) or \
            cls.job_id_from_env(env) is not None

    def _scontrol_job(self, job_id: str) -> dict[str, str]:
        res = self.run(["scontrol", "show", "job", "-o", job_id])
        lines = res.stdout.strip().splitlines() if res.ok else []
        return parse_kv_line(lines[0]) if lines else {}

    def _times(self, job_id: str, job: dict[str, str]) -> tuple[int | None, int | None]:
        """(time limit, time left) in seconds; None = unlimited or unknown."""
        res = self.run(["squeue", "-h", "-j", job_id, "-o", "%L|%l"])
        line = res.stdout.strip().splitlines()[0] if res.ok and res.stdout.strip() else ""
        if "|" in line:
            left, _, limit = line.partition("|")
            return parse_slurm_time(limit), parse_slurm_time(left)
        job = job or self._scontrol_job(job_id)
        limit = parse_slurm_time(job.get("TimeLimit"))
        used = parse_slurm_time(job.get("RunTime"))
        left = max(0, limit - used) if limit is not None and used is not None else None
        return limit, left

    def partitions(self) -> list[dict]:
        """From `sinfo` (one line per partition and node kind; the smallest node wins)."""
        res = self.run(["sinfo", "-h", "-o", "%P|%c|%G|%l"])
        return parse_sinfo_partitions(res.stdout) if res.ok else []

    def cancel_jobs_under(self, path: str) -> list[str]:
        res = self.run(["squeue", "-h", "-u", getpass.getuser(), "-t", "PD,CF,R,S",
                        "-o", "%i|%Z"])
        if not res.ok:
            return []
        root = os.path.join(os.path.abspath(path), "")
        ids = []
        for line in res.stdout.splitlines():
            job, _, workdir = line.strip().partition("|")
            if job.isdigit() and os.path.join(os.path.abspath(workdir), "").startswith(root):
                ids.append(job)
        if ids:
            self.run(["scancel", *ids])
        return ids

    def allocation(self) -> dict | None:
        job_id = self.job_id()
        if job_id is None:
            return None
        env = self.env
        needed = ("SLURM_JOB_PARTITION", "SLURM_JOB_NUM_NODES", "SLURM_JOB_NODELIST",
                  "SLURM_JOB_ACCOUNT", "SLURM_JOB_NAME")
        job = self._scontrol_job(job_id) if not all(env.get(k) for k in needed) else {}
        gpus = as_int(env.get("SLURM_GPUS_ON_NODE"))
        if gpus is None:
            gpus = gpus_from_text(env.get("SLURM_GPUS_PER_NODE"))
        if gpus is None and env.get("SLURM_JOB_GPUS"):
            gpus = len([g for g in env["SLURM_JOB_GPUS"].split(",") if g.strip()])
        cpus = as_int(env.get("SLURM_CPUS_ON_NODE")) or \
            as_int(env.get("SLURM_JOB_CPUS_PER_NODE"))
        nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or \
            job.get("NodeList") or None
        n_nodes = as_int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES")) or \
            as_int(job.get("NumNodes")) or (len(expand_hostlist(nodelist)) or None)
        limit, left = self._times(job_id, job)
        return make_allocation(
            job_id=job_id,
            partition=env.get("SLURM_JOB_PARTITION") or job.get("Partition") or None,
            n_nodes=n_nodes,
            nodelist=nodelist,
            cpus_per_node=cpus,
            gpus_per_node=gpus if gpus is not None else gpus_from_text(job.get("TRES")),
            account=env.get("SLURM_JOB_ACCOUNT") or job.get("Account") or None,
            job_name=env.get("SLURM_JOB_NAME") or job.get("JobName") or None,
            runtime=limit,
            remaining_seconds=left,
        )
