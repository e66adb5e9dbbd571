"""psij plugin internals without an edge: job spec validation, psij spec building (the
SLURM/PBS scripts psij would submit), output reading by offset, exactly-once state tracking."""
from __future__ import annotations

import io
import random
import subprocess
import threading
from pathlib import Path

import pytest

from radical.edge.plugins.psij.build import (
    format_walltime,
    build_psij_spec,
    env_script,
    unquote_directives,
    walltime,
)
from radical.edge.plugins.psij.jobs import FINAL_STATES, JobRecord
from radical.edge.plugins.psij.output import read_chunk, tail
from radical.edge.plugins.psij.spec import (
    JobRequest,
    JobSpecError,
    normalize_executor,
    parse_duration,
    parse_job_spec,
)


# -- durations ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, seconds", [
    (600, 600), ("600", 600), (1.2, 2), ("90.5", 91), ("10:00", 600), ("1:02:03", 3723),
    ("2-00:00:00", 172800), ("1-2", 93600), ("1-02:30", 95400), ("0:00:01", 1),
])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "0", 0, -5, "1:xx", True, "nan"])
def test_parse_duration_rejects(value):
    with pytest.raises(JobSpecError):
        parse_duration(value)


def test_parse_duration_empty_is_none():
    assert parse_duration(None) is None and parse_duration("") is None


def test_walltime_rendering():
    def shown(seconds: int, executor: str) -> str:
        return format_walltime(walltime(seconds, executor), executor)

    assert shown(90, "slurm") == "00:01:30"
    assert shown(86400 + 5, "slurm") == "1-00:00:05"
    assert shown(26 * 3600, "pbs") == "26:00:00"
    assert walltime(120, "lsf").total_seconds() == 120


# -- job specs ------------------------------------------------------------------------------------
def test_full_spec_with_aliases():
    req = parse_job_spec({
        "executable": "/bin/echo", "arguments": ["a", 1, ""], "directory": "work",
        "environment": {"A": "x y", "B": 2}, "inherit_environment": False, "name": "n",
        "queue": "batch",  # flat, as the portal form sends it
        "attributes": {"duration": "00:10:00", "project_name": "radical",
                       "reservation": "r1", "node_count": 2, "slurm.constraint": "V100",
                       "custom_attributes": {"slurm.qos": "high", "pbs.l": True}},
        "resources": {"process_count": 4, "exclusive_node_use": True},
    })
    assert req.arguments == ["a", "1", ""]
    assert req.directory == str(Path.home() / "work")
    assert req.environment == {"A": "x y", "B": "2"} and req.inherit_environment is False
    assert (req.queue_name, req.account, req.reservation) == ("batch", "radical", "r1")
    assert req.duration == 600 and req.node_count == 2 and req.process_count == 4
    assert req.custom_attributes == {"slurm.constraint": "V100", "slurm.qos": "high",
                                     "pbs.l": "true"}
    assert req.exclusive_node_use is True
    assert req.summary() == {"executable": "/bin/echo", "arguments": ["a", "1", ""],
                             "directory": req.directory, "queue_name": "batch",
                             "account": "radical", "node_count": 2, "duration": 600}


@pytest.mark.parametrize("spec, words", [
    ([], "must be a JSON object"),
    ({}, "executable is required"),
    ({"executable": ["/bin/ls"]}, "must be a string"),
    ({"executable": "/bin/ls", "arguments": "-l"}, "list of strings"),
    ({"executable": "/bin/ls", "arguments": [None]}, "arguments[0]"),
    ({"executable": "/bin/ls", "arguments": ["a\nb"]}, "newlines"),
    ({"executable": "/bin/ls", "bogus": 1}, "unknown job_spec field(s): bogus"),
    ({"executable": "/bin/ls", "environment": []}, "environment must be an object"),
    ({"executable": "/bin/ls", "environment": {"A-B": "1"}}, "invalid variable name"),
    ({"executable": "/bin/ls", "environment": {"A": None}}, "not null"),
    ({"executable": "/bin/ls", "inherit_environment": "yes"}, "true or false"),
    ({"executable": "/bin/ls", "attributes": []}, "attributes must be an object"),
    ({"executable": "/bin/ls", "attributes": {"colour": 1}}, "unknown attribute"),
    ({"executable": "/bin/ls", "attributes": {"duration": "x"}}, "duration"),
    ({"executable": "/bin/ls", "attributes": {"custom_attributes": {"nodot": 1}}},
     "scheduler.option"),
    ({"executable": "/bin/ls", "attributes": {"slurm.comment": 'say "hi"'}}, "double quotes"),
    ({"executable": "/bin/ls", "attributes": {"node_count": 0}}, "at least 1"),
    ({"executable": "/bin/ls", "attributes": {"node_count": "two"}}, "positive integer"),
    ({"executable": "/bin/ls", "attributes": {"node_count": 1.5}}, "whole number"),
    ({"executable": "/bin/ls", "node_count": 1, "resources": {"node_count": 2}}, "twice"),
    ({"executable": "/bin/ls", "resources": {"gpus": 1}}, "unknown job_spec.resources"),
    ({"executable": "/bin/ls", "resources": {"node_count": 2, "process_count": 3,
                                             "processes_per_node": 2}}, "must equal"),
    ({"executable": "/bin/ls", "name": 'a"b'}, "double quotes"),
    ({"executable": "/bin/ls", "resources": {"node_count": 10 ** 30}}, "at most 1000000"),
    ({"executable": "/bin/ls", "resources": {"node_count": 1000, "processes_per_node": 1001}},
     "1001000 processes"),
])
def test_bad_specs(spec, words):
    with pytest.raises(JobSpecError) as err:
        parse_job_spec(spec)
    assert err.value.status == 422
    assert words in err.value.detail


def test_executor_names():
    known = frozenset({"local", "slurm", "pbs", "lsf"})
    assert normalize_executor("PBS", known) == "pbs"
    assert normalize_executor("pbspro", known) == "pbs"  # the name before psij-python 0.9
    assert normalize_executor(" slurm ", known) == "slurm"
    with pytest.raises(JobSpecError) as err:
        normalize_executor("condor", known)
    assert "unknown executor 'condor'" in err.value.detail and "pbs" in err.value.detail
    with pytest.raises(JobSpecError):
        normalize_executor(None, known)


# -- psij specs and the scripts psij writes -------------------------------------------------------
def test_env_script_round_trips_through_bash(tmp_path):
    values = {"ODD": "a b,c 'd' \"e\" $HOME `x` \\ ;", "EMPTY": "", "UNI": "héllo"}
    user_pre = tmp_path / "pre.sh"
    user_pre.write_text("export FROM_USER=yes\n")
    script = tmp_path / "env.sh"
    script.write_text(env_script(values, then_source=str(user_pre)))
    out = subprocess.run(["bash", "-c", f'source "{script}"; printf "%s|%s|%s|%s" "$ODD" '
                                        '"$EMPTY" "$UNI" "$FROM_USER"'],
                         capture_output=True, text=True, check=True).stdout
    assert out == f"{values['ODD']}||héllo|yes"


def test_unquote_directives():
    script = ('#!/bin/bash\n#SBATCH --comment="\'a b\'"\n#SBATCH --partition="batch"\n'
              '#PBS -l "\'select=1:ncpus=2 x\'"\necho "\'keep\'"\n')
    assert unquote_directives(script) == ('#!/bin/bash\n#SBATCH --comment="a b"\n'
                                          '#SBATCH --partition="batch"\n'
                                          '#PBS -l "select=1:ncpus=2 x"\necho "\'keep\'"\n')


def _script(pool_dir: Path, req: JobRequest, executor: str, tmp_path: Path) -> str:
    import psij

    from radical.edge.plugins.psij.executors import ExecutorPool

    pool = ExecutorPool(pool_dir, interval=30)
    env_file = str(tmp_path / "job.env") if req.environment else None
    job = psij.Job()
    job.spec = build_psij_spec(req, executor, stdout_path=str(tmp_path / "o"),
                               stderr_path=str(tmp_path / "e"), env_file=env_file)
    job.name = req.name
    ex = pool.get(executor)
    buf = io.StringIO()
    ex.generate_submit_script(job, ex._create_script_context(job), buf)
    return buf.getvalue()


def test_slurm_script(tmp_path):
    pytest.importorskip("psij")
    req = parse_job_spec({
        "executable": "/bin/echo", "arguments": ["x"], "name": "my job",
        "environment": {"A": "1,2"},
        "attributes": {"duration": "1-00:00:00", "queue_name": "batch", "account": "radical",
                       "reservation_id": "res", "slurm.comment": "two words"},
        "resources": {"node_count": 2}})
    text = _script(tmp_path / "work", req, "slurm", tmp_path)
    lines = text.splitlines()
    for expected in ('#SBATCH --job-name="my job"', "#SBATCH --time=1-00:00:00",
                     '#SBATCH --partition="batch"', '#SBATCH --account="radical"',
                     '#SBATCH --reservation="res"', '#SBATCH --comment="two words"',
                     "#SBATCH --nodes=2", "#SBATCH --export=ALL"):
        assert expected in lines, (expected, text)
    assert "#SBATCH --exclusive" not in lines  # psij's ResourceSpecV1 default would add it
    assert not any(line.startswith("#SBATCH --export=A=") for line in lines)
    assert str(tmp_path / "job.env") in text  # environment via the pre-launch file
    assert str(tmp_path / "work" / "slurm") in text  # our work dir, not ~/.psij


def test_pbs_script_gets_queue_and_account(tmp_path):
    pytest.importorskip("psij")
    req = parse_job_spec({"executable": "/bin/true", "attributes": {
        "queue_name": "workq", "account": "proj", "duration": 26 * 3600}})
    text = _script(tmp_path / "work", req, "pbs", tmp_path)
    assert "#PBS -q workq" in text.splitlines() and "#PBS -A proj" in text.splitlines()
    assert "#PBS -l walltime=26:00:00" in text


def test_local_spec_keeps_environment(tmp_path):
    pytest.importorskip("psij")
    req = parse_job_spec({"executable": "/bin/true", "environment": {"A": "1"}})
    spec = build_psij_spec(req, "local", stdout_path="/o", stderr_path="/e",
                           env_file=str(tmp_path / "unused"))
    assert spec.environment == {"A": "1"} and spec.pre_launch is None
    assert spec.resources is None and spec.stdout_path == Path("/o")


# -- output ---------------------------------------------------------------------------------------
def test_read_chunk_offsets_and_utf8(tmp_path):
    path = tmp_path / "out"
    assert read_chunk(str(path), 0) == ("", 0)  # not yet there
    data = "abc é€\n".encode()
    path.write_bytes(data[:5])  # 'abc ' + first byte of 'é'
    assert read_chunk(str(path), 0) == ("abc ", 4)  # the cut character waits
    path.write_bytes(data)
    text, off = read_chunk(str(path), 4)
    assert text == "é€\n" and off == len(data)
    assert read_chunk(str(path), off) == ("", off)
    assert read_chunk(str(path), 100) == ("", 100)
    # past any file this filesystem can hold (seek: EINVAL); found by the schemathesis run
    assert read_chunk(str(path), 132705650122224880) == ("", 132705650122224880)
    assert read_chunk(str(path), 0, limit=2) == ("ab", 2)
    path.write_bytes(data[:5])
    assert read_chunk(str(path), 4, complete=True) == ("\ufffd", 5)  # job over: flush it
    assert read_chunk(None, 3) == ("", 3)
    path.write_bytes(b"x" * 5000)
    assert tail(str(path)) == "x" * 4096 and tail(str(tmp_path / "nope")) is None


# -- state tracking -------------------------------------------------------------------------------
def _record(tmp_path: Path) -> JobRecord:
    (tmp_path / "o").write_text("out\n")
    return JobRecord("j1", "slurm", JobRequest(executable="/bin/true"), str(tmp_path / "o"),
                     str(tmp_path / "e"), edge_name="child")


def test_transitions_once_and_forward_only(tmp_path):
    rec = _record(tmp_path)
    note = rec.apply("QUEUED", native_id=42)
    assert note["state"] == "QUEUED" and note["native_id"] == "42"
    assert note["edge_name"] == "child" and "exit_code" not in note
    assert rec.apply("QUEUED") is None
    assert rec.apply("ACTIVE")["state"] == "ACTIVE"
    assert rec.apply("QUEUED") is None  # late report from another thread
    final = rec.apply("COMPLETED", exit_code=0)
    assert final["exit_code"] == 0 and final["stdout"] == "out\n" and final["stderr"] is None
    assert rec.apply("FAILED", exit_code=1) is None  # only one terminal state
    assert rec.apply("CANCELED") is None and rec.apply("BOGUS") is None
    assert rec.notified == ["QUEUED", "ACTIVE", "COMPLETED"]
    assert rec.final and rec.exit_code == 0
    status = rec.status(0, 0)
    assert status["stdout"] == "out\n" and status["stdout_offset"] == 4
    assert status["stderr"] == "" and status["stderr_offset"] == 0


def test_skipped_states_are_fine(tmp_path):
    rec = _record(tmp_path)
    assert rec.apply("CANCELED")["state"] == "CANCELED"
    assert rec.apply("ACTIVE") is None
    assert rec.notified == ["CANCELED"]


def test_concurrent_reports_notify_each_state_once_in_order(tmp_path):
    """psij calls the status callback from several threads: the session's own callback
    (`PsijSession._on_status`, with its locking) must notify each state once, in order."""
    from types import SimpleNamespace

    from radical.edge.plugins.psij.session import PsijSession

    job = SimpleNamespace(native_id="42")
    for _round in range(20):
        session = PsijSession("s1", pool=None, out_root=tmp_path)
        sent: list[str] = []
        session.notify = lambda topic, note: sent.append(note["state"])  # type: ignore
        (tmp_path / "o").write_text("out\n")
        rec = JobRecord("j1", "local", JobRequest(executable="/bin/true"), str(tmp_path / "o"),
                        str(tmp_path / "e"))
        reports = ["QUEUED", "ACTIVE", "QUEUED", "ACTIVE", "COMPLETED", "FAILED"] * 5
        random.shuffle(reports)
        barrier = threading.Barrier(8)

        def worker(states):
            barrier.wait()
            for state in states:
                status = SimpleNamespace(state=state, message=None, exit_code=None, time=None)
                session._on_status(rec, job, status)

        threads = [threading.Thread(target=worker, args=(reports[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(sent) == len(set(sent))
        assert sum(s in FINAL_STATES for s in sent) == 1
        order = {"QUEUED": 1, "ACTIVE": 2, "COMPLETED": 3, "FAILED": 3}
        assert [order[s] for s in sent] == sorted(order[s] for s in sent)
