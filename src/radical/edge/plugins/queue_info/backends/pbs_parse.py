"""Pure parsers of PBS Pro / OpenPBS `-F json` output (tests feed recorded-style files).

Nodes serve queues in one of three ways, checked in this order: the node's `queue`
attribute; a custom resource such as `Qlist` that the queue names in `default_chunk`
(`default_chunk.Qlist = prod` picks nodes whose `resources_available.Qlist` lists `prod`);
otherwise every node without a `queue` attribute. A routing queue shows the union of the
nodes of its destinations.
"""
from __future__ import annotations

import re
from typing import Any

from radical.edge.hpc.batch.base import as_int
from radical.edge.hpc.batch.pbs import (exec_hosts, parse_pbs_mem_mb, parse_pbs_time,
                                           parse_pbs_walltime)

from .shapes import allocation_record, job_record, minutes, queue_record

#: PBS job_state letters -> the vocabulary the portal knows (SLURM's)
JOB_STATES = {"Q": "PENDING", "W": "PENDING", "T": "PENDING", "R": "RUNNING", "B": "RUNNING",
              "E": "COMPLETING", "F": "COMPLETED", "X": "COMPLETED", "H": "HELD",
              "S": "SUSPENDED", "U": "SUSPENDED", "M": "MOVED"}
UNAVAILABLE = ("down", "offline", "state-unknown", "stale", "unresolvable", "maintenance",
               "provisioning", "wait-provisioning", "sleep")
#: custom node resources sites use to bind nodes to queues
QUEUE_RESOURCES = ("Qlist", "qlist", "queue_list")


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "t", "y")


def _items(value: Any) -> list[str]:
    """'a,b' / ['a', 'b'] / None -> ['a', 'b']."""
    if value is None:
        return []
    raw = value if isinstance(value, list) else str(value).split(",")
    return [str(v).strip() for v in raw if str(v).strip()]


def user_limit(value: Any, user: str | None) -> int | None:
    """A limit for `user` from '[u:PBS_GENERIC=5]', '[u:alice=9]' (or a list of them).

    A named entry beats the generic one; an old-style plain number applies to everyone.
    """
    if value is None or value == "":
        return None
    text = " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    entries = re.findall(r"\[\s*([ugpo])\s*:\s*([^=\]]+?)\s*=\s*(\d+)\s*\]", text)
    if not entries:
        return as_int(text)
    named = {name: int(n) for kind, name, n in entries if kind == "u"}
    if user and user in named:
        return named[user]
    return named.get("PBS_GENERIC")


def queue_allows(q: dict, user: str, groups: set[str] | None) -> bool:
    """Queue ACLs (acl_users / acl_groups) for `user`; unknown groups do not hide a queue."""
    if truthy(q.get("acl_user_enable")):
        allowed = {u.split("@", 1)[0] for u in _items(q.get("acl_users"))}
        if user not in allowed:
            return False
    if truthy(q.get("acl_group_enable")) and groups is not None:
        if not groups & set(_items(q.get("acl_groups"))):
            return False
    return True


def queue_state(q: dict) -> str:
    """enabled+started -> UP; not enabled -> DRAIN (runs, takes nothing new); else DOWN."""
    enabled, started = truthy(q.get("enabled")), truthy(q.get("started"))
    if enabled and started:
        return "UP"
    return "DRAIN" if started else "DOWN"


def _node_view(name: str, n: dict) -> dict:
    avail = n.get("resources_available") or {}
    assigned = n.get("resources_assigned") or {}
    state = str(n.get("state") or "").lower()
    jobs = _items(n.get("jobs"))
    down = any(s.strip() in UNAVAILABLE for s in state.split(","))
    busy = bool(jobs) or (as_int(assigned.get("ncpus")) or 0) > 0
    return {"name": name, "queue": n.get("queue"), "resources": avail,
            "available": not down, "idle": not down and state == "free" and not busy,
            "cpus": as_int(avail.get("ncpus")) or as_int(n.get("pcpus")) or 0,
            "gpus": as_int(avail.get("ngpus")) or 0,
            "mem_mb": parse_pbs_mem_mb(avail.get("mem")) or 0}


def _members(qname: str, q: dict, nodes: list[dict]) -> list[dict]:
    bound = [n for n in nodes if n["queue"] == qname]
    if bound:
        return bound
    chunk = q.get("default_chunk") or {}
    for res in QUEUE_RESOURCES:
        if res in chunk:
            want = str(chunk[res])
            return [n for n in nodes if want in _items(n["resources"].get(res))]
    if not truthy(q.get("hasnodes", "True")) and q.get("queue_type") != "Execution":
        return []
    return [n for n in nodes if not n["queue"]]


def build_queues(qdoc: dict, ndoc: dict, sdoc: dict | None = None) -> dict[str, dict]:
    """`qstat -Q -f`, `pbsnodes -a`, `qstat -B -f` JSON -> {name: queue dict}."""
    raw_queues = qdoc.get("Queue") or {}
    nodes = [_node_view(name, n) for name, n in (ndoc.get("nodes") or {}).items()]
    server = next(iter((sdoc or {}).get("Server", {}).values()), {})
    default_queue = server.get("default_queue")
    members = {name: _members(name, q, nodes) for name, q in raw_queues.items()
               if str(q.get("queue_type", "")).lower().startswith("e")}
    for name, q in raw_queues.items():  # routing queues: union of their destinations
        if name not in members:
            seen: dict[str, dict] = {}
            for dest in _items(q.get("route_destinations")):
                for n in members.get(dest.split("@", 1)[0], []):
                    seen[n["name"]] = n
            members[name] = list(seen.values())
    queues = {}
    for name, q in raw_queues.items():
        mem = members[name]
        rmax, rdef = q.get("resources_max") or {}, q.get("resources_default") or {}
        wall = parse_pbs_walltime(rmax.get("walltime"))
        queues[name] = queue_record(
            name, state=queue_state(q),
            time_limit=minutes(wall) if wall is not None else "UNLIMITED",
            default=name == default_queue,
            nodes_total=len(mem), nodes_available=sum(n["available"] for n in mem),
            nodes_idle=sum(n["idle"] for n in mem),
            cpus_per_node=max((n["cpus"] for n in mem), default=0),
            mem_per_node_mb=max((n["mem_mb"] for n in mem), default=0),
            gpus_per_node=max((n["gpus"] for n in mem), default=0),
            max_jobs_per_user=user_limit(q.get("max_run"), None) or
            as_int(q.get("max_user_run")),
            features=sorted({str(n["resources"].get(k)) for n in mem
                             for k in ("gputype", "model", "feature") if n["resources"].get(k)}),
            default_time_limit=minutes(parse_pbs_walltime(rdef.get("walltime"))),
            queue_type=str(q.get("queue_type", "")),
            route_destinations=_items(q.get("route_destinations")),
            max_nodes=as_int(rmax.get("nodect")),
            max_mem_mb=parse_pbs_mem_mb(rmax.get("mem")),
            acl_users=_items(q.get("acl_users")) if truthy(q.get("acl_user_enable")) else [],
            acl_groups=_items(q.get("acl_groups")) if truthy(q.get("acl_group_enable")) else [],
            total_jobs=as_int(q.get("total_jobs")) or 0,
        )
    return queues


def job_owner(job: dict) -> str:
    return str(job.get("Job_Owner") or job.get("euser") or "").split("@", 1)[0]


def short_id(full_id: str) -> str:
    """'4103[].sched01' -> '4103[]' (qdel accepts it on the same server)."""
    return full_id.split(".", 1)[0]


def jobs_from_qstat(doc: dict) -> list[dict]:
    """`qstat -f -F json` -> job dicts (array jobs as one row, like `qstat` without -t)."""
    out = []
    for full_id, j in (doc.get("Jobs") or {}).items():
        res = j.get("Resource_List") or {}
        used = j.get("resources_used") or {}
        code = str(j.get("job_state") or "?")[:1].upper()
        account = j.get("Account_Name") or ""
        if not account and j.get("project") not in (None, "_pbs_project_default"):
            account = j["project"]
        row = job_record(
            short_id(full_id), job_name=j.get("Job_Name") or "", user=job_owner(j),
            partition=j.get("queue") or "", state=JOB_STATES.get(code, "UNKNOWN"),
            nodes=as_int(res.get("nodect")) or 0, cpus=as_int(res.get("ncpus")) or 0,
            time_limit=minutes(parse_pbs_walltime(res.get("walltime"))),
            time_used=parse_pbs_walltime(used.get("walltime")) or 0,
            submit_time=parse_pbs_time(j.get("qtime") or j.get("ctime")),
            start_time=parse_pbs_time(j.get("stime")),
            priority=as_int(j.get("Priority")) or 0, account=str(account),
            node_list=",".join(exec_hosts(j.get("exec_host"))),
            job_id_full=full_id, state_code=code, reason=j.get("comment") or "",
            gpus=as_int(res.get("ngpus")) or 0, mem_mb=parse_pbs_mem_mb(res.get("mem")))
        if truthy(j.get("array")):
            row.update(array=True, array_indices=j.get("array_indices_submitted") or "",
                       array_remaining=j.get("array_indices_remaining") or "",
                       array_state_count=str(j.get("array_state_count") or "").strip())
        out.append(row)
    return out


def allocations_from_queues(qdoc: dict, user: str, accounts: list[str],
                            groups: set[str] | None) -> list[dict]:
    """PBS has no associations; offer what the site does: per-queue limits for `user`.

    One row per (account seen on the user's jobs, execution queue the user may use).
    `user='*'` gives the generic limits with an empty user and account.
    """
    rows = []
    for name, q in (qdoc.get("Queue") or {}).items():
        if not str(q.get("queue_type", "")).lower().startswith("e"):
            continue
        who = None if user == "*" else user
        if who and not queue_allows(q, who, groups):
            continue
        wall_text = (q.get("resources_max") or {}).get("walltime")
        wall = parse_pbs_walltime(wall_text)
        for account in accounts or [""]:
            rows.append(allocation_record(
                account=account, user=who or "", fairshare=None, qos=name,
                max_jobs=user_limit(q.get("max_run"), who) or as_int(q.get("max_user_run")),
                max_submit=user_limit(q.get("max_queued"), who),
                max_wall=str(wall_text) if wall_text else None,
                max_wall_minutes=minutes(wall), queue=name, source="pbs queue limits",
                enabled=truthy(q.get("enabled"))))
    return rows
