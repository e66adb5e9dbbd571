"""SLURM backend: scontrol/sinfo/squeue for queues and jobs, sacctmgr for associations.

`sinfo --json` and `squeue --json` are used when they answer with JSON (22.05's openapi
plugin does; builds without a JSON plugin print an error) and the formatted text output is
the fallback. 22.05's `squeue --json` ignores `-u`/`-p`, so jobs are always filtered here.
Partition limits come from `scontrol show partition -o` (stable across releases) and
`sacctmgr` has no JSON before 23.02, so it is read as `-P` text with an explicit format.
"""
from __future__ import annotations

import json
import logging
import re

from radical.edge.hpc.batch.slurm import parse_kv_line

from .base import (ALL_USERS, BackendUnavailable, CancelDenied, CancelFailed,
                   JobEnded, NotAJobId, QueueInfo, UnknownJob, groups_of)
from .slurm_parse import (ASSOC_FORMAT, QOS_FORMAT, SEP, SINFO_FIELDS, SQUEUE_FIELDS,
                          build_queues, inherit_account_budget, jobs_from_squeue_json,
                          jobs_from_squeue_text, parse_sshare_usage,
                          nodes_from_sinfo_json, nodes_from_sinfo_text, parse_assocs,
                          parse_partitions, parse_qos_limits)
from .shapes import TERMINAL_STATES

log = logging.getLogger(__name__)

#: what scancel accepts as one job: 12, 12_3, 12_[1-5], 12+1 (no options, no lists)
JOB_ID_RE = re.compile(r"^\d+(?:_\d+|_\[[\d,\-%]+\])?(?:\+\d+)?$")


class QueueInfoSlurm(QueueInfo):
    backend_name = "slurm"

    def __init__(self, *args, use_json: bool | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._use_json = use_json  # None = probe on first use

    # -- JSON first, text fallback -----------------------------------------------------------
    def _json(self, argv: list[str]) -> dict | None:
        """The command's JSON document, or None when this SLURM cannot print JSON."""
        if self._use_json is False:
            return None
        res = self.run(argv)
        try:
            doc = json.loads(res.stdout) if res.ok else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            if self._use_json is None:
                log.info("%s has no JSON output here; using formatted text", " ".join(argv))
                self._use_json = False
            return None
        self._use_json = True
        return doc

    def _nodes(self) -> list[dict]:
        doc = self._json(["sinfo", "--json"])
        if doc is not None:
            return nodes_from_sinfo_json(doc)
        return nodes_from_sinfo_text(
            self.run_ok(["sinfo", "-h", "-N", "-o", SEP.join(SINFO_FIELDS)]))

    def _jobs_all(self, user: str) -> list[dict]:
        doc = self._json(["squeue", "--json"])
        if doc is not None:
            return jobs_from_squeue_json(doc)
        argv = ["squeue", "-h", "-o", SEP.join(SQUEUE_FIELDS)]
        if user != ALL_USERS:
            argv += ["-u", user]
        return jobs_from_squeue_text(self.run_ok(argv))

    # -- collectors ----------------------------------------------------------------------------
    def _collect_queues(self, user: str) -> dict[str, dict]:
        parts = parse_partitions(self.run_ok(["scontrol", "show", "partition", "-o"]))
        nodes = self._nodes()
        qos_names = {p.get("QoS") for p in parts} - {None, "", "N/A"}
        limits = {}
        if qos_names:
            res = self.run(["sacctmgr", "-n", "-P", "show", "qos",
                            "format=" + ",".join(QOS_FORMAT)])
            limits = parse_qos_limits(res.stdout) if res.ok else {}
        queues = build_queues(parts, nodes, limits)
        if user == ALL_USERS:
            return queues
        visible = self._visible_partitions(user, parts)
        return {name: q for name, q in queues.items() if name in visible}

    def _visible_partitions(self, user: str, parts: list[dict[str, str]]) -> set[str]:
        """Partitions `user` may submit to, judged by ACLs and associations we can see."""
        assocs = self.list_allocations(user)["allocations"]
        accounts = {a["account"] for a in assocs if a.get("account")}
        assoc_parts = {a.get("partition") or "" for a in assocs}
        groups = groups_of(user)
        visible = set()
        for part in parts:
            name = part["PartitionName"]
            if part.get("Hidden", "NO").upper() == "YES":
                continue
            if part.get("RootOnly", "NO").upper() == "YES" and user != "root":
                continue
            if assocs and "" not in assoc_parts and name not in assoc_parts:
                continue
            allow = _acl(part.get("AllowAccounts"))
            if accounts and allow is not None and not accounts & allow:
                continue
            deny = _acl(part.get("DenyAccounts"))
            if accounts and deny and accounts <= deny:
                continue
            allow_groups = _acl(part.get("AllowGroups"))
            if groups is not None and allow_groups is not None and not groups & allow_groups:
                continue
            visible.add(name)
        return visible

    def _collect_jobs(self, user: str) -> list[dict]:
        jobs = self._jobs_all(user)
        if user != ALL_USERS:
            jobs = [j for j in jobs if j["user"] == user]
        return jobs

    def _collect_allocations(self, user: str) -> list[dict]:
        argv = ["sacctmgr", "-n", "-P", "show", "assoc", "format=" + ",".join(ASSOC_FORMAT)]
        if user != ALL_USERS:
            argv.append(f"users={user}")
        res = self.run(argv)
        if not res.ok:  # no slurmdbd (accounting_storage/none): nothing to show
            log.warning("sacctmgr failed, no associations: %s", res.stderr.strip())
            return []
        rows = parse_assocs(res.stdout)
        if user != ALL_USERS:
            rows = [r for r in rows if r["user"] == user]
            self._account_budgets(rows)
        if any(r["allocated_node_hours"] is not None for r in rows):
            self._add_usage(rows)
        return rows

    def _account_budgets(self, rows: list[dict]) -> None:
        """`users=` hides the account associations that usually hold node-hour budgets
        (GrpTRESMins): read those of the user's accounts once more."""
        accounts = sorted({r["account"] for r in rows
                           if r["allocated_node_hours"] is None and r["account"]})
        if not accounts:
            return
        res = self.run(["sacctmgr", "-n", "-P", "show", "assoc",
                        "format=" + ",".join(ASSOC_FORMAT), "accounts=" + ",".join(accounts)])
        if res.ok:
            inherit_account_budget(rows, parse_assocs(res.stdout))

    def _add_usage(self, rows: list[dict]) -> None:
        """used/remaining node-hours from `sshare` (only where a node-hour budget exists)."""
        res = self.run(["sshare", "-n", "-P", "-a", "-o", "Account,User,GrpTRESRaw"])
        if not res.ok:
            log.info("sshare failed, no node-hour usage: %s", res.stderr.strip())
            return
        used = parse_sshare_usage(res.stdout)
        for r in rows:
            budget = r["allocated_node_hours"]
            if budget is None:
                continue
            # a budget inherited from the account is spent by the whole account
            shared = r.get("node_hours_scope") == "account"
            spent = used.get((r["account"], "" if shared else r["user"]))
            if spent is not None:
                r["used_node_hours"] = spent
                r["remaining_node_hours"] = round(max(0.0, budget - spent), 2)

    # -- cancel --------------------------------------------------------------------------------
    def _cancel(self, job_id: str) -> dict:
        if not JOB_ID_RE.match(job_id):
            raise NotAJobId(f"unknown job id '{job_id}': not a SLURM job id")
        res = self.run(["scontrol", "show", "job", "-o", job_id])
        text = (res.stdout + res.stderr).strip()
        if not res.ok:
            if "invalid job id" in text.lower():
                raise UnknownJob(f"unknown job id '{job_id}'")
            raise BackendUnavailable(f"scontrol failed: {text or res.rc}")
        rows = [parse_kv_line(ln) for ln in res.stdout.splitlines() if "JobId=" in ln]
        job_states = {r.get("JobState", "").upper() for r in rows}
        if rows and job_states <= TERMINAL_STATES:
            raise JobEnded(f"job {job_id} already ended ({', '.join(sorted(job_states))})",
                           ",".join(sorted(job_states)))
        res = self.run(["scancel", job_id])
        err = (res.stderr + res.stdout).strip()
        if not res.ok or "error" in err.lower():
            low = err.lower()
            if "permission" in low or "denied" in low or "not authorized" in low:
                raise CancelDenied(f"not allowed to cancel job {job_id}: {err}")
            if "invalid job id" in low:
                raise UnknownJob(f"unknown job id '{job_id}'")
            if "already completing or completed" in low:
                raise JobEnded(f"job {job_id} already ended: {err}")
            raise CancelFailed(f"scancel {job_id} failed: {err or res.rc}")
        before = sorted(job_states)[0] if len(job_states) == 1 else ",".join(sorted(job_states))
        return {"job_id": job_id, "status": "canceled", "previous_state": before}


def _acl(value: str | None) -> set[str] | None:
    """'ALL'/empty -> None (no restriction), 'a,b' -> {'a', 'b'}."""
    if not value or value.upper() in ("ALL", "(NULL)"):
        return None
    return {v.strip() for v in value.split(",") if v.strip()}

