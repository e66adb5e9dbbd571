"""PBS Professional / OpenPBS: detection, the current allocation, and JSON helpers.

PBS exports little about a job (PBS_JOBID, PBS_QUEUE, PBS_NODEFILE, ...); the rest comes
from `qstat -f -F json $PBS_JOBID`. Real `-F json` output is not always valid JSON (values
like `005`, stray backslashes from `qsub -V`, repeated `max_run` keys), so `loads_pbs_json`
repairs what it knows about. The parsing helpers are shared with the queue_info PBS backend.
"""
from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Mapping

from .base import BatchSystem, as_int, make_allocation, run_command, which
from .registry import register

_MEM_UNITS = {"b": 1, "w": 8, "kb": 1024, "kw": 8 * 1024, "mb": 1024 ** 2,
              "mw": 8 * 1024 ** 2, "gb": 1024 ** 3, "gw": 8 * 1024 ** 3, "tb": 1024 ** 4,
              "tw": 8 * 1024 ** 4, "pb": 1024 ** 5}


def _merge_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """object_pairs_hook: a repeated key ('max_run' twice) becomes a list, not a loss."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = (prev if isinstance(prev, list) else [prev]) + [value]
        else:
            out[key] = value
    return out


def _fix_escape(m: re.Match) -> str:
    """Keep a valid JSON escape; turn an invalid one into a literal backslash."""
    return m.group(0) if len(m.group(1)) > 1 or m.group(1) in '"\\/bfnrt' else "\\\\" + m.group(1)


def loads_pbs_json(text: str) -> dict:
    """Parse `qstat`/`pbsnodes -F json` output, repairing known PBS JSON bugs.

    Raises ValueError when the text is not JSON even after repair.
    """
    try:
        return json.loads(text, object_pairs_hook=_merge_duplicates)
    except json.JSONDecodeError:
        pass
    # \' \, \w \u@ ... (invalid escapes from `qsub -V` environments) -> literal backslash
    fixed = re.sub(r'\\(u[0-9a-fA-F]{4}|["\\/bfnrt]|.)', _fix_escape, text, flags=re.S)
    fixed = re.sub(r'(:\s*)(-?0\d+(?:\.\d+)?)(\s*[,}\n])', r'\1"\2"\3', fixed)  # 005 -> "005"
    fixed = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", " ", fixed)
    try:
        return json.loads(fixed, object_pairs_hook=_merge_duplicates, strict=False)
    except json.JSONDecodeError as exc:
        raise ValueError(f"unparsable PBS JSON: {exc}") from None


def parse_pbs_walltime(text: Any) -> int | None:
    """'[[HH:]MM:]SS[.ms]' (or a number of seconds) -> seconds; None when unset."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    parts = str(text).strip().split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return None
    seconds = 0.0
    for n in nums:
        seconds = seconds * 60 + n
    return int(seconds) if len(nums) <= 4 else None


def parse_pbs_mem_mb(text: Any) -> int | None:
    """PBS size ('527672488kb', '32gb', '1tb', '4096') -> MiB; plain numbers are bytes."""
    if text is None or text == "":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([kmgtp]?[bw])?\s*", str(text), re.IGNORECASE)
    if not m:
        return None
    factor = _MEM_UNITS[(m.group(2) or "b").lower()]
    return int(m.group(1)) * factor // (1024 ** 2)


def parse_pbs_time(text: Any) -> int:
    """PBS time stamp ('Mon Sep 18 13:45:01 2023' or epoch) -> epoch seconds; 0 if unset."""
    if text is None or text == "":
        return 0
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    try:
        return int(time.mktime(time.strptime(str(text).strip(), "%a %b %d %H:%M:%S %Y")))
    except (ValueError, OverflowError):
        return as_int(text) or 0


def exec_hosts(text: Any) -> list[str]:
    """'x1/0*64+x2/0*64' (exec_host) -> ['x1', 'x2'], duplicates dropped, order kept."""
    hosts: list[str] = []
    for token in str(text or "").split("+"):
        host = token.split("/", 1)[0].strip().strip("()").split(":", 1)[0]
        if host and host not in hosts:
            hosts.append(host)
    return hosts


def select_chunk(select: Any) -> dict[str, str]:
    """First chunk of 'N:ncpus=64:ngpus=4+...' -> {'count': 'N', 'ncpus': '64', ...}."""
    chunk = str(select or "").split("+", 1)[0]
    out: dict[str, str] = {}
    for i, token in enumerate(chunk.split(":")):
        if "=" in token:
            key, _, value = token.partition("=")
            out[key.strip()] = value.strip()
        elif i == 0 and token.strip().isdigit():
            out["count"] = token.strip()
    return out


@register
class PBSProBatchSystem(BatchSystem):
    name = "pbs"
    psij_executor = "pbs"
    priority = 20
    job_id_vars = ("PBS_JOBID",)

    @classmethod
    def available(cls, env: Mapping[str, str] | None = None) -> bool:
        """qstat of PBS Pro/OpenPBS, not Torque's or SLURM's `qstat` look-alikes."""
        env = os.environ if env is None else env
        qstat = which("qstat", env)
        if not qstat:
            return cls.job_id_from_env(env) is not None
        if env.get("PBS_EXEC") or os.path.isfile(env.get("PBS_CONF_FILE") or "/etc/pbs.conf"):
            return True
        res = run_command([qstat, "--version"], timeout=5, env=env)
        return "pbs_version" in (res.stdout + res.stderr).lower()

    def _job_record(self, job_id: str) -> dict:
        res = self.run(["qstat", "-f", "-F", "json", job_id])
        if not res.ok:
            return {}
        try:
            jobs = loads_pbs_json(res.stdout).get("Jobs") or {}
        except ValueError:
            return {}
        return next(iter(jobs.values()), {}) if jobs else {}

    def _nodefile_hosts(self) -> list[str]:
        path = self.env.get("PBS_NODEFILE")
        if not path:
            return []
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                names = [line.strip().split(".", 1)[0] for line in fh if line.strip()]
        except OSError:
            return []
        return list(dict.fromkeys(names))

    def allocation(self) -> dict | None:
        job_id = self.job_id()
        if job_id is None:
            return None
        env, rec = self.env, self._job_record(job_id)
        res_list = rec.get("Resource_List") or {}
        used = rec.get("resources_used") or {}
        chunk = select_chunk(res_list.get("select"))
        hosts = self._nodefile_hosts() or exec_hosts(rec.get("exec_host"))
        limit = parse_pbs_walltime(res_list.get("walltime"))
        spent = parse_pbs_walltime(used.get("walltime"))
        if spent is None and rec.get("stime"):
            spent = max(0, int(time.time()) - parse_pbs_time(rec.get("stime")))
        left = max(0, limit - spent) if limit is not None and spent is not None else limit
        account = env.get("PBS_ACCOUNT") or rec.get("Account_Name") or None
        return make_allocation(
            job_id=job_id,
            partition=env.get("PBS_QUEUE") or rec.get("queue") or env.get("PBS_O_QUEUE"),
            n_nodes=len(hosts) or as_int(res_list.get("nodect")),
            nodelist=",".join(hosts) or None,
            cpus_per_node=as_int(chunk.get("ncpus")) or as_int(env.get("NCPUS")),
            gpus_per_node=as_int(chunk.get("ngpus")),
            account=account,
            job_name=env.get("PBS_JOBNAME") or rec.get("Job_Name") or None,
            runtime=limit,
            remaining_seconds=left,
        )
