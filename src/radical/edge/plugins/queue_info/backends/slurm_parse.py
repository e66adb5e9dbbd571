"""Pure parsers of SLURM command output (no subprocess here, so tests feed recorded text).

JSON differs across SLURM releases: 22.05 (openapi v0.0.38) prints plain numbers and
`"state": "idle"` plus `state_flags`; 23.02+ (data_parser) wraps numbers as
`{"set", "infinite", "number"}` and states as lists. `num()` and `states()` absorb both.
Text fallbacks use explicit formats with an ASCII unit separator, which no job name or
feature list contains (unlike '|', which job names may).
"""
from __future__ import annotations

import time
from typing import Any, Iterable

from radical.edge.hpc.batch.slurm import (expand_hostlist, gpus_from_text, parse_kv_line,
                                             parse_slurm_time)

from .shapes import TERMINAL_STATES, allocation_record, job_record, minutes, queue_record

SEP = "\x1f"
#: `sinfo -h -N -o` fields: one line per (node, partition)
SINFO_FIELDS = ("%N", "%P", "%T", "%c", "%m", "%G", "%f")
#: `squeue -h -o` fields, in the order `jobs_from_squeue_text` reads them
SQUEUE_FIELDS = ("%i", "%j", "%u", "%P", "%T", "%D", "%C", "%l", "%M", "%V", "%S", "%Q", "%a",
                 "%N", "%r")
#: `sacctmgr -n -P show assoc format=...`
ASSOC_FORMAT = ("Cluster", "Account", "User", "Partition", "Fairshare", "QOS", "DefaultQOS",
                "MaxJobs", "MaxSubmit", "MaxWall", "GrpTRES", "MaxTRES", "GrpTRESMins")
#: trailing ASSOC_FORMAT columns an older output (or test fixture) may lack
_OPTIONAL_ASSOC = 1
QOS_FORMAT = ("Name", "MaxJobsPU", "MaxSubmitPU", "MaxWall")

_INFINITE = 0xFFFFFFFE  # SLURM's NO_VAL-1 "INFINITE" in 32-bit fields
_SUFFIX_FLAGS = {"*": "NOT_RESPONDING", "~": "POWERED_DOWN", "#": "POWERING_UP",
                 "!": "POWERING_DOWN", "%": "POWERING_DOWN", "$": "MAINTENANCE",
                 "@": "REBOOT_REQUESTED", "^": "REBOOT_ISSUED", "-": "PLANNED"}
UNAVAILABLE = frozenset({"DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING",
                         "NOT_RESPONDING", "NO_RESPOND", "MAINTENANCE", "MAINT", "POWERED_DOWN",
                         "POWER_DOWN", "POWERING_DOWN", "INVAL", "INVALID", "FUTURE", "UNKNOWN",
                         "REBOOT_ISSUED", "PLANNED"})


def num(value: Any) -> int | None:
    """Plain number or a 23.02+ wrapper -> int; None when unset or infinite."""
    if isinstance(value, dict):
        if value.get("infinite") or not value.get("set", True):
            return None
        value = value.get("number")
    if value is None or isinstance(value, bool):
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        return None
    return None if out >= _INFINITE else out


def states(value: Any, flags: Iterable[str] = ()) -> set[str]:
    """'idle', 'down*', ['IDLE', 'DRAIN'] (+ state_flags) -> {'IDLE', 'DRAIN', ...}."""
    items = value if isinstance(value, list) else [value]
    out: set[str] = set()
    for item in items:
        text = str(item or "").strip().upper()
        while text and text[-1] in _SUFFIX_FLAGS:
            out.add(_SUFFIX_FLAGS[text[-1]])
            text = text[:-1]
        out.update(t for t in text.replace("+", " ").split() if t)
    out.update(str(f).upper() for f in flags)
    return out


def _node(name: str, partitions: list[str], state: set[str], cpus: Any, mem: Any, gres: Any,
          features: Any) -> dict:
    feats = features if isinstance(features, list) else str(features or "").split(",")
    return {"name": name, "partitions": [p.rstrip("*") for p in partitions if p],
            "states": state, "cpus": num(cpus) or 0, "mem_mb": num(mem) or 0,
            "gpus": gpus_from_text(gres) or 0,
            "features": [f.strip() for f in feats if f and f.strip() not in ("", "(null)")]}


def nodes_from_sinfo_json(doc: dict) -> list[dict]:
    """`sinfo --json` of 22.05 ('nodes') or 23.02+ ('sinfo' entries) -> node dicts."""
    if isinstance(doc.get("nodes"), list):
        return [_node(n.get("name") or n.get("hostname") or "", list(n.get("partitions") or []),
                      states(n.get("state"), n.get("state_flags") or ()), n.get("cpus"),
                      n.get("real_memory"), n.get("gres"), n.get("features") or "")
                for n in doc["nodes"]]
    merged: dict[str, dict] = {}
    for entry in doc.get("sinfo") or []:
        part = (entry.get("partition") or {}).get("name", "")
        node_state = states((entry.get("node") or {}).get("state"))
        for name in (entry.get("nodes") or {}).get("nodes") or []:
            node = merged.get(name)
            if node is None:
                merged[name] = _node(
                    name, [part], node_state, (entry.get("cpus") or {}).get("maximum"),
                    (entry.get("memory") or {}).get("maximum"),
                    (entry.get("gres") or {}).get("total"),
                    (entry.get("features") or {}).get("total") or "")
            elif part not in node["partitions"]:
                node["partitions"].append(part)
    return list(merged.values())


def nodes_from_sinfo_text(text: str) -> list[dict]:
    """`sinfo -h -N -o <SINFO_FIELDS joined by SEP>` -> node dicts (lines merged per node)."""
    merged: dict[str, dict] = {}
    for line in text.splitlines():
        cols = line.split(SEP)
        if len(cols) < len(SINFO_FIELDS):
            continue
        name, part, state, cpus, mem, gres, feats = cols[:7]
        if name in merged:
            merged[name]["partitions"].append(part.rstrip("*"))
        else:
            merged[name] = _node(name, [part], states(state), cpus, mem, gres, feats)
    return list(merged.values())


def parse_partitions(text: str) -> list[dict[str, str]]:
    """`scontrol show partition -o` -> one key/value dict per partition."""
    return [kv for kv in (parse_kv_line(ln) for ln in text.splitlines()) if "PartitionName" in kv]


def parse_qos_limits(text: str) -> dict[str, int | None]:
    """`sacctmgr -n -P show qos format=QOS_FORMAT` -> {qos: max jobs per user}."""
    out: dict[str, int | None] = {}
    for line in text.splitlines():
        cols = line.split("|")
        if len(cols) >= 2 and cols[0]:
            out[cols[0]] = num(cols[1]) if cols[1].strip() else None
    return out


def build_queues(partitions: list[dict[str, str]], nodes: list[dict],
                 qos_max_jobs: dict[str, int | None] | None = None) -> dict[str, dict]:
    """Partition config + node states -> {name: queue dict} (`shapes.queue_record`)."""
    qos_max_jobs = qos_max_jobs or {}
    by_name = {n["name"]: n for n in nodes}
    queues: dict[str, dict] = {}
    for part in partitions:
        name = part["PartitionName"]
        members = [n for n in nodes if name in n["partitions"]]
        if not members:  # no node records: fall back to the configured host list
            members = [by_name[h] for h in expand_hostlist(part.get("Nodes")) if h in by_name]
        avail = [n for n in members if not n["states"] & UNAVAILABLE]
        limit = parse_slurm_time(part.get("MaxTime"))
        queues[name] = queue_record(
            name,
            state=(part.get("State") or "UNKNOWN").upper(),
            time_limit=minutes(limit) if limit is not None else "UNLIMITED",
            default=part.get("Default", "NO").upper() == "YES",
            nodes_total=len(members) or num(part.get("TotalNodes")) or 0,
            nodes_available=len(avail),
            nodes_idle=sum(1 for n in avail if "IDLE" in n["states"]
                           and not n["states"] & {"COMPLETING", "RESERVED"}),
            cpus_per_node=max((n["cpus"] for n in members), default=0),
            mem_per_node_mb=max((n["mem_mb"] for n in members), default=0),
            gpus_per_node=max((n["gpus"] for n in members), default=0),
            max_jobs_per_user=qos_max_jobs.get(part.get("QoS") or ""),
            features=sorted({f for n in members for f in n["features"]}),
            default_time_limit=minutes(parse_slurm_time(part.get("DefaultTime"))),
            cpus_total=num(part.get("TotalCPUs")) or sum(n["cpus"] for n in members),
            hidden=part.get("Hidden", "NO").upper() == "YES",
        )
    return queues


def _array_id(job: dict) -> str:
    """squeue's display id: '12', '12_3' (array task) or '12_[4-9]' (pending array rest)."""
    array_id, task = num(job.get("array_job_id")), num(job.get("array_task_id"))
    rest = job.get("array_task_string") or ""
    if array_id and task is not None:
        return f"{array_id}_{task}"
    if array_id and rest:
        return f"{array_id}_[{rest}]" if not rest.startswith("[") else f"{array_id}_{rest}"
    return str(num(job.get("job_id")) or job.get("job_id") or "")


def jobs_from_squeue_json(doc: dict, now: float | None = None,
                          active_only: bool = True) -> list[dict]:
    """`squeue --json` (22.05 or newer) -> job dicts.

    The JSON also holds jobs that ended within MinJobAge; `active_only` drops them, as
    plain `squeue` does, so both paths list the same jobs.
    """
    now = time.time() if now is None else now
    out = []
    for job in doc.get("jobs") or []:
        state_val = job.get("job_state")
        state = (state_val[0] if isinstance(state_val, list) and state_val else state_val)
        state = str(state or "UNKNOWN").upper()
        if active_only and state in TERMINAL_STATES:
            continue
        start = num(job.get("start_time")) or 0
        used = int(now - start) if state in ("RUNNING", "COMPLETING", "SUSPENDED") and start \
            else 0
        out.append(job_record(
            _array_id(job), job_name=job.get("name") or "", user=job.get("user_name") or "",
            partition=job.get("partition") or "", state=state,
            nodes=num(job.get("node_count")) or 0, cpus=num(job.get("cpus")) or 0,
            time_limit=num(job.get("time_limit")), time_used=max(0, used),
            submit_time=num(job.get("submit_time")) or 0, start_time=start,
            priority=num(job.get("priority")) or 0, account=job.get("account") or "",
            node_list=job.get("nodes") or "", reason=job.get("state_reason") or "",
            qos=job.get("qos") or ""))
    return out


def _epoch(text: str) -> int:
    try:
        return int(time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S")))
    except (ValueError, OverflowError):
        return 0


def jobs_from_squeue_text(text: str) -> list[dict]:
    """`squeue -h -o <SQUEUE_FIELDS joined by SEP>` -> job dicts."""
    out = []
    for line in text.splitlines():
        cols = line.split(SEP)
        if len(cols) < len(SQUEUE_FIELDS):
            continue
        jid, name, user, part, state, nodes, cpus, limit, used, sub, start, prio, acct, \
            nodelist, reason = cols[:15]
        out.append(job_record(
            jid.strip(), job_name=name, user=user.strip(), partition=part.strip(),
            state=state.strip().upper(), nodes=num(nodes) or 0, cpus=num(cpus) or 0,
            time_limit=minutes(parse_slurm_time(limit)),
            time_used=parse_slurm_time(used) or 0, submit_time=_epoch(sub),
            start_time=_epoch(start), priority=num(prio) or 0, account=acct.strip(),
            node_list=nodelist.strip(), reason=reason.strip()))
    return out


def parse_assocs(text: str) -> list[dict]:
    """`sacctmgr -n -P show assoc format=ASSOC_FORMAT` -> allocation dicts."""
    out = []
    for line in text.splitlines():
        cols = line.split("|")
        if len(cols) < len(ASSOC_FORMAT) - _OPTIONAL_ASSOC:
            continue
        cols += [""] * (len(ASSOC_FORMAT) - len(cols))
        row = dict(zip(ASSOC_FORMAT, (c.strip() for c in cols)))
        share = row["Fairshare"]
        out.append(allocation_record(
            account=row["Account"], user=row["User"],
            fairshare=int(share) if share.isdigit() else (share or None),
            qos=row["QOS"], max_jobs=num(row["MaxJobs"]) if row["MaxJobs"] else None,
            max_submit=num(row["MaxSubmit"]) if row["MaxSubmit"] else None,
            max_wall=row["MaxWall"] or None,  # the scheduler's string, as the original
            max_wall_minutes=minutes(parse_slurm_time(row["MaxWall"])),
            cluster=row["Cluster"], partition=row["Partition"],
            default_qos=row["DefaultQOS"], grp_tres=row["GrpTRES"] or None,
            max_tres=row["MaxTRES"] or None, grp_tres_mins=row["GrpTRESMins"] or None,
            allocated_node_hours=node_hours(row["GrpTRESMins"])))
    inherit_account_budget(out)
    return out


def tres_value(tres: str | None, name: str) -> int | None:
    """The `name=N` entry of a TRES string (`cpu=10,node=600`), or None."""
    for part in (tres or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == name and value.isdigit():
            return int(value)
    return None


def node_hours(tres_mins: str | None) -> float | None:
    """Node-hours of a TRES-minutes string (`GrpTRESMins` / `GrpTRESRaw`), or None."""
    value = tres_value(tres_mins, "node")
    return None if value is None else round(value / 60, 2)


def inherit_account_budget(rows: list[dict], source: list[dict] | None = None) -> None:
    """User associations without a node-hour limit of their own share their account's
    (the account associations are in `rows`, or in `source` when `rows` were filtered)."""
    budgets = {(r["cluster"], r["account"]): r["allocated_node_hours"]
               for r in (rows if source is None else source)
               if not r["user"] and r.get("node_hours_scope", "association") == "association"
               and r["allocated_node_hours"] is not None}
    for r in rows:
        if r["allocated_node_hours"] is not None:
            r.setdefault("node_hours_scope", "association")
        elif (r["cluster"], r["account"]) in budgets:
            r["allocated_node_hours"] = budgets[(r["cluster"], r["account"])]
            r["node_hours_scope"] = "account"


def parse_sshare_usage(text: str) -> dict[tuple[str, str], float]:
    """`sshare -n -P -o Account,User,GrpTRESRaw` -> {(account, user): used node-hours}."""
    used = {}
    for line in text.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) >= 3:
            hours = node_hours(cols[2])
            if hours is not None:
                used[(cols[0], cols[1])] = hours
    return used
