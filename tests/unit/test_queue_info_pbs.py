"""PBS Pro backend on recorded-style outputs (there is no PBS server in Debian to run).

The fixtures in tests/fixtures/pbs are modelled on real `-F json` output of PBS Pro 2022.1
(site A: GPU nodes bound to queues by a `Qlist` resource, routing queue, array and held
jobs, repeated `max_run` keys, invalid escapes and a `007` value from `qsub -V`) and
OpenPBS 23.06 (site B: tab-indented, nodes bound by the `queue` attribute, group ACL).
They are hand-written, not captured from a live server.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Sequence

import pytest

from radical.edge.plugins.queue_info.backends import (CancelConflict, CancelDenied,
                                                     UnknownJob, UnknownQueue)
from radical.edge.plugins.queue_info.backends.base import BadUser
from radical.edge.plugins.queue_info.backends.pbs import QueueInfoPBS
from radical.edge.plugins.queue_info.backends.shapes import (ALLOCATION_KEYS, JOB_KEYS,
                                                            QUEUE_KEYS)
from radical.edge.hpc.batch.base import CmdResult

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "pbs"
SITE_A = {("qstat", "-Q"): "qstat_Qf.json", ("qstat", "-B"): "qstat_Bf.json",
          ("pbsnodes", "-a"): "pbsnodes_a.json", ("qstat", "-f"): "qstat_f.json"}
SITE_B = {k: "openpbs_" + v for k, v in SITE_A.items()}


class FakePBS:
    """Answers PBS commands from fixture files and records every call."""

    def __init__(self, files: dict[tuple[str, str], str]) -> None:
        self.files = files
        self.calls: list[list[str]] = []
        self.qdel: CmdResult = CmdResult(0, "", "")

    def __call__(self, argv: Sequence[str], timeout: float) -> CmdResult:
        self.calls.append(list(argv))
        if argv[0] == "qdel":
            return self.qdel
        name = self.files.get((argv[0], argv[1]))
        if name is None:
            return CmdResult(1, "", f"{argv[0]}: unexpected arguments {argv}")
        return CmdResult(0, (FIX / name).read_text(), "")

    def count(self, *prefix: str) -> int:
        return sum(1 for c in self.calls if c[:len(prefix)] == list(prefix))


def backend(files=SITE_A, ttl: float = 60.0) -> tuple[QueueInfoPBS, FakePBS]:
    fake = FakePBS(files)
    return QueueInfoPBS(runner=fake, ttl=ttl, env={}), fake


# -- queues -------------------------------------------------------------------------------------
def test_site_a_queues_all_keys_and_values() -> None:
    qi, _ = backend()
    queues = qi.get_info(user="*")["queues"]
    assert set(queues) == {"debug", "prod", "small", "large", "preemptable", "bigmem"}
    for q in queues.values():
        assert set(QUEUE_KEYS) <= set(q)
    debug = queues["debug"]
    assert debug["state"] == "UP" and debug["time_limit"] == 60 and not debug["default"]
    assert debug["default_time_limit"] == 30  # resources_default vs resources_max
    assert (debug["nodes_total"], debug["nodes_available"], debug["nodes_idle"]) == (4, 4, 1)
    assert (debug["cpus_per_node"], debug["gpus_per_node"]) == (64, 4)
    assert debug["mem_per_node_mb"] == 527672488 // 1024
    assert debug["max_jobs_per_user"] == 1 and debug["features"] == ["A100"]
    small = queues["small"]
    assert (small["nodes_total"], small["nodes_available"], small["nodes_idle"]) == (6, 4, 1)
    assert small["max_jobs_per_user"] == 20  # generic entry of the repeated max_run keys
    assert queues["prod"]["default"] is True and queues["prod"]["queue_type"] == "Route"
    assert queues["prod"]["nodes_total"] == 6 and queues["prod"]["time_limit"] == 1440
    assert queues["large"]["state"] == "DOWN"  # started = False
    big = queues["bigmem"]
    assert big["state"] == "DRAIN" and big["gpus_per_node"] == 0  # enabled = False
    assert big["mem_per_node_mb"] == 2113929216 // 1024 and big["max_jobs_per_user"] == 2
    assert big["max_mem_mb"] == 2 * 1024 * 1024
    assert queues["preemptable"]["time_limit"] == 72 * 60


def test_queue_acl_hides_queue_from_other_users() -> None:
    qi, _ = backend()
    assert "preemptable" in qi.get_info(user="alice")["queues"]
    assert "preemptable" not in qi.get_info(user="bob")["queues"]


def test_site_b_openpbs_tabs_queue_attribute_and_duplicates() -> None:
    qi, _ = backend(SITE_B)
    queues = qi.get_info(user="*")["queues"]
    workq, gpu = queues["workq"], queues["gpu"]
    assert workq["default"] and workq["time_limit"] == "UNLIMITED"
    assert workq["default_time_limit"] == 60
    assert (workq["nodes_total"], workq["nodes_available"], workq["nodes_idle"]) == (2, 1, 0)
    assert workq["mem_per_node_mb"] == 192 * 1024
    assert (gpu["nodes_total"], gpu["nodes_idle"], gpu["gpus_per_node"]) == (1, 1, 2)
    assert gpu["time_limit"] == 48 * 60 and gpu["max_jobs_per_user"] == 2
    assert gpu["acl_groups"] == ["gpuusers"]


# -- jobs ---------------------------------------------------------------------------------------
def test_jobs_all_users_shapes_states_arrays() -> None:
    qi, _ = backend()
    jobs = {j["job_id"]: j for j in qi.list_all_jobs(user="*")["jobs"]}
    assert set(jobs) == {"4101", "4102", "4103[]", "4104", "4105", "4106", "4107", "4108[]"}
    for j in jobs.values():
        assert set(JOB_KEYS) <= set(j)
    run = jobs["4101"]
    assert run["state"] == "RUNNING" and run["user"] == "alice" and run["partition"] == "small"
    assert (run["nodes"], run["cpus"], run["gpus"]) == (2, 128, 8)
    assert run["time_limit"] == 120 and run["time_used"] == 42 * 60 + 17
    assert run["node_list"] == "x1001c0s0b0n0,x1001c0s1b0n0" and run["account"] == "ProjA"
    raw = (FIX / "qstat_f.json").read_text()
    stime = raw.split('"stime":"', 1)[1].split('"', 1)[0]
    assert run["start_time"] == int(time.mktime(time.strptime(stime, "%a %b %d %H:%M:%S %Y")))
    assert run["submit_time"] < run["start_time"]
    assert run["mem_mb"] == 256 * 1024 and run["job_id_full"] == "4101.sched01"
    arr = jobs["4103[]"]
    assert arr["state"] == "RUNNING" and arr["state_code"] == "B" and arr["array"] is True
    assert arr["array_indices"] == "0-99" and arr["array_state_count"].startswith("Queued:88")
    assert jobs["4108[]"]["state"] == "PENDING" and jobs["4108[]"]["array_indices"] == "1-9:2"
    assert jobs["4104"]["state"] == "HELD" and "held" in jobs["4104"]["reason"]
    assert jobs["4106"]["state"] == "COMPLETING" and jobs["4107"]["state"] == "PENDING"
    assert jobs["4102"]["priority"] == 10 and jobs["4102"]["start_time"] == 0


def test_jobs_filtered_by_user_and_queue() -> None:
    qi, _ = backend()
    mine = qi.list_all_jobs(user="bob")["jobs"]
    assert sorted(j["job_id"] for j in mine) == ["4104", "4105", "4108[]"]
    assert [j["job_id"] for j in qi.list_jobs("debug", user="bob")["jobs"]] == ["4104", "4108[]"]
    assert [j["job_id"] for j in qi.list_jobs("small", user="*")["jobs"]] == \
        ["4101", "4102", "4106"]
    assert qi.list_jobs("small", user="bob")["jobs"] == []
    with pytest.raises(UnknownQueue) as err:
        qi.list_jobs("nope", user="*")
    assert err.value.status == 404 and "debug" in err.value.detail


def test_site_b_jobs_without_account() -> None:
    qi, _ = backend(SITE_B)
    jobs = {j["job_id"]: j for j in qi.list_all_jobs(user="dave")["jobs"]}
    assert jobs["17"]["account"] == "" and jobs["17"]["time_used"] == 450
    assert jobs["18"]["gpus"] == 2 and jobs["18"]["mem_mb"] == 64 * 1024
    assert jobs["18"]["account"] == "ml" and jobs["18"]["time_limit"] == 47 * 60


# -- allocations --------------------------------------------------------------------------------
def test_allocations_are_queue_limits_per_account() -> None:
    qi, _ = backend()
    rows = qi.list_allocations(user="carol")["allocations"]
    for row in rows:
        assert set(ALLOCATION_KEYS) <= set(row)
    by_queue = {r["queue"]: r for r in rows}
    assert set(by_queue) == {"debug", "small", "large", "preemptable", "bigmem"}
    assert {r["account"] for r in rows} == {"ProjC"}
    assert by_queue["small"]["max_jobs"] == 4  # the named [u:carol=4] beats the generic one
    assert by_queue["small"]["max_submit"] == 100 and by_queue["small"]["max_wall"] == "03:00:00"
    assert by_queue["small"]["max_wall_minutes"] == 180
    assert by_queue["debug"]["max_jobs"] == 1 and by_queue["bigmem"]["enabled"] is False
    bob = {r["queue"] for r in qi.list_allocations(user="bob")["allocations"]}
    assert "preemptable" not in bob
    generic = qi.list_allocations(user="*")["allocations"]
    assert all(r["user"] == "" and r["account"] == "" for r in generic)
    assert {r["qos"] for r in generic} >= {"debug", "small", "preemptable"}


# -- cancel -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stderr,exc", [
    ("qdel: Unknown Job Id 999.sched01", UnknownJob),
    ("qdel: Unauthorized Request  4105.sched01", CancelDenied),
    ("qdel: Request invalid for state of job 4106.sched01", CancelConflict),
    ("qdel: Job has finished 4100.sched01", CancelConflict)])
def test_cancel_errors(stderr: str, exc: type) -> None:
    qi, fake = backend()
    fake.qdel = CmdResult(1 if "Unknown" in stderr else 168, "", stderr)
    with pytest.raises(exc):
        qi.cancel_job("4105")


def test_cancel_ok_and_rejects_option_like_ids() -> None:
    qi, fake = backend()
    assert qi.cancel_job("4103[]") == {"job_id": "4103[]", "status": "canceled"}
    assert fake.calls[-1] == ["qdel", "4103[]"]
    for bad in ("-W force 1", "1;rm", "", "abc"):
        with pytest.raises(UnknownJob):
            qi.cancel_job(bad)
    assert fake.count("qdel") == 1


def test_user_names_no_command_may_get_are_400_before_any_command() -> None:
    """Found by the schemathesis run (tests/integration/test_openapi_fuzz.py): a NUL in
    `?user=` made subprocess raise, a 500."""
    qi, fake = backend()
    for bad in ("a\x00b", "-u root", "x\ny", "x" * 300):
        for call in (qi.get_info, qi.list_all_jobs, qi.list_allocations):
            with pytest.raises(BadUser) as err:
                call(user=bad)
            assert err.value.status == 400 and "is not a user name" in str(err.value)
    assert fake.calls == []
    assert qi.list_all_jobs(user="alice")["jobs"] is not None  # a real name still works


# -- cache --------------------------------------------------------------------------------------
def test_cache_ttl_force_and_cancel_invalidation() -> None:
    qi, fake = backend(ttl=60)
    qi.list_all_jobs(user="*")
    qi.list_all_jobs(user="*")
    assert fake.count("qstat", "-f") == 1
    qi.list_all_jobs(user="*", force=True)
    assert fake.count("qstat", "-f") == 2
    qi.cancel_job("4104")
    qi.list_all_jobs(user="*")
    assert fake.count("qstat", "-f") == 3
    qi.get_info(user="*")
    qi.get_info(user="*")
    assert fake.count("pbsnodes") == 1 and fake.count("qstat", "-Q") == 1
    qi.get_info(user="*", force=True)
    assert fake.count("pbsnodes") == 2 and fake.count("qstat", "-Q") == 2
    short, fake2 = backend(ttl=0.05)
    short.get_info(user="*")
    time.sleep(0.1)
    short.get_info(user="*")
    assert fake2.count("pbsnodes") == 2


def test_concurrent_callers_share_one_command() -> None:
    import threading

    fake = FakePBS(SITE_A)

    def slow(argv: Sequence[str], timeout: float) -> CmdResult:
        time.sleep(0.2)
        return fake(argv, timeout)

    qi = QueueInfoPBS(runner=slow, ttl=60, env={})
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        len(qi.list_all_jobs(user="*")["jobs"]))) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert results == [8] * 8 and fake.count("qstat", "-f") == 1


def test_cached_answers_are_copies() -> None:
    qi, _ = backend()
    qi.get_info(user="*")["queues"]["debug"]["state"] = "MANGLED"
    assert qi.get_info(user="*")["queues"]["debug"]["state"] == "UP"


def test_prefetch_warms_cache() -> None:
    qi, fake = backend()
    for thread in qi.start_prefetch():
        thread.join(5)
    before = len(fake.calls)
    qi.get_info()
    qi.list_allocations()
    qi.list_all_jobs()
    assert len(fake.calls) == before


def test_broken_server_is_unavailable_not_a_crash() -> None:
    qi = QueueInfoPBS(runner=lambda argv, t: CmdResult(-1, "", "qstat: timed out"), env={})
    with pytest.raises(Exception) as err:
        qi.get_info(user="*")
    assert getattr(err.value, "status", None) == 503
    for thread in qi.start_prefetch():  # warm-up failures are logged, not raised
        thread.join(5)


# -- the plugin over this backend (no bridge: a fake host) --------------------------------------
class FakeHost:
    edge_name, role, settings = "e1", "login", None

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], object] = {}
        self.state = type("S", (), {"batch": None})()

    def add_route(self, method: str, path: str, handler: object) -> None:
        self.routes[(method, path)] = handler

    def notify(self, plugin: str, topic: str, data: dict) -> None:
        pass


def call(host: FakeHost, method: str, path: str, query: str = "", **params: str):
    from starlette.requests import Request

    template = next(p for (m, p) in host.routes if m == method and
                    p.split("{")[0] == path.split("{")[0] and p.count("/") == path.count("/"))
    scope = {"type": "http", "method": method, "path": path, "query_string": query.encode(),
             "headers": [], "path_params": params}
    return asyncio.run(host.routes[(method, template)](Request(scope)))


def test_plugin_routes_and_errors() -> None:
    from starlette.exceptions import HTTPException

    from radical.edge.plugins.queue_info.plugin import QueueInfoPlugin, parse_bool

    qi, _ = backend()
    host = FakeHost()
    plugin = QueueInfoPlugin(host, backend=qi)  # type: ignore[arg-type]
    assert {p for (_m, p) in host.routes} >= {
        "/queue_info/job_allocation", "/queue_info/backend", "/queue_info/get_info/{sid}",
        "/queue_info/list_jobs/{sid}/{queue}", "/queue_info/list_all_jobs/{sid}",
        "/queue_info/list_allocations/{sid}", "/queue_info/cancel/{sid}/{job_id}"}
    assert call(host, "GET", "/queue_info/backend") == {"backend": "pbs"}
    session = asyncio.run(plugin.create_session("s1"))
    session._plugin = plugin
    plugin._sessions.add("s1", session)
    sid = session.sid
    info = call(host, "GET", "/queue_info/get_info/{sid}", "user=*&force=1", sid=sid)
    assert "debug" in info["queues"]
    jobs = call(host, "GET", "/queue_info/list_jobs/{sid}/{queue}", "user=*", sid=sid,
                queue="debug")
    assert [j["job_id"] for j in jobs["jobs"]] == ["4104", "4108[]"]
    with pytest.raises(HTTPException) as err:
        call(host, "GET", "/queue_info/list_jobs/{sid}/{queue}", sid=sid, queue="nope")
    assert err.value.status_code == 404
    with pytest.raises(HTTPException) as err:
        call(host, "POST", "/queue_info/cancel/{sid}/{job_id}", sid=sid, job_id="--all")
    assert err.value.status_code == 404
    with pytest.raises(HTTPException) as err:
        call(host, "GET", "/queue_info/get_info/{sid}", sid="session.nope")
    assert err.value.status_code == 404
    assert parse_bool("TRUE") and parse_bool("1") and not parse_bool("0")
    assert not parse_bool(None)
