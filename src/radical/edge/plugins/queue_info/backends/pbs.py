"""PBS Pro / OpenPBS backend: `qstat -F json`, `pbsnodes -F json`, `qdel`.

Jobs are always fetched for everyone and filtered here: `qstat -u USER -f -F json` mixes
plain text into the JSON on current releases (openpbs PR 2675). The JSON itself goes through
`loads_pbs_json`, which repairs the invalid JSON real servers print.
"""
from __future__ import annotations

import logging
import re

from radical.edge.hpc.batch.pbs import loads_pbs_json

from .base import (ALL_USERS, BackendUnavailable, CancelConflict, CancelDenied, CancelFailed,
                   JobEnded, NotAJobId, QueueInfo, UnknownJob, groups_of)
from .pbs_parse import allocations_from_queues, build_queues, jobs_from_qstat, queue_allows

log = logging.getLogger(__name__)

#: one PBS job: 123, 123[], 123[7], optionally .server
JOB_ID_RE = re.compile(r"^\d+(?:\[\d*\])?(?:\.[\w.-]+)?$")


class QueueInfoPBS(QueueInfo):
    backend_name = "pbs"

    def _doc(self, argv: list[str]) -> dict:
        text = self.run_ok(argv)
        try:
            return loads_pbs_json(text)
        except ValueError as exc:
            raise BackendUnavailable(f"{' '.join(argv)}: {exc}") from None

    def _queues_doc(self) -> dict:
        return self._cached("raw_queues", ALL_USERS, False,
                            lambda: self._doc(["qstat", "-Q", "-f", "-F", "json"]))

    def _collect_queues(self, user: str) -> dict[str, dict]:
        self.invalidate("raw_queues")  # reached on a miss or force: read the server afresh
        qdoc = self._queues_doc()
        ndoc = self._doc(["pbsnodes", "-a", "-F", "json"])
        res = self.run(["qstat", "-B", "-f", "-F", "json"])
        try:
            sdoc = loads_pbs_json(res.stdout) if res.ok else {}
        except ValueError:
            sdoc = {}
        queues = build_queues(qdoc, ndoc, sdoc)
        if user == ALL_USERS:
            return queues
        groups = groups_of(user)
        raw = qdoc.get("Queue") or {}
        return {name: q for name, q in queues.items()
                if queue_allows(raw.get(name, {}), user, groups)}

    def _all_jobs(self) -> list[dict]:
        return self._cached("raw_jobs", ALL_USERS, False,
                            lambda: jobs_from_qstat(self._doc(["qstat", "-f", "-F", "json"])))

    def _collect_jobs(self, user: str) -> list[dict]:
        self.invalidate("raw_jobs")  # the per-user cache above this one owns the TTL
        jobs = self._all_jobs()
        return jobs if user == ALL_USERS else [j for j in jobs if j["user"] == user]

    def _collect_allocations(self, user: str) -> list[dict]:
        jobs = self._all_jobs()
        mine = jobs if user == ALL_USERS else [j for j in jobs if j["user"] == user]
        accounts = sorted({j["account"] for j in mine if j["account"]})
        if user == ALL_USERS:
            accounts = []
        groups = None if user == ALL_USERS else groups_of(user)
        return allocations_from_queues(self._queues_doc(), user, accounts, groups)

    def _cancel(self, job_id: str) -> dict:
        if not JOB_ID_RE.match(job_id):
            raise NotAJobId(f"unknown job id '{job_id}': not a PBS job id")
        res = self.run(["qdel", job_id])
        if res.ok:
            return {"job_id": job_id, "status": "canceled"}
        err = (res.stderr + res.stdout).strip()
        low = err.lower()
        if "unknown job id" in low:
            raise UnknownJob(f"unknown job id '{job_id}'")
        if "unauthorized" in low or "permission" in low:
            raise CancelDenied(f"not allowed to cancel job {job_id}: {err}")
        if "job has finished" in low:
            raise JobEnded(f"job {job_id} already ended: {err}", "F")
        if "invalid for state" in low or "request invalid" in low:
            raise CancelConflict(f"job {job_id} cannot be cancelled now: {err}")
        if res.rc == -1:
            raise BackendUnavailable(err)
        raise CancelFailed(f"qdel {job_id} failed: {err or res.rc}")
