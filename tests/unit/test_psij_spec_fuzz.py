"""Property test: whatever JSON a client sends as a psij job spec, validation answers with a
`JobSpecError` (-> 422) or a valid request, never another exception (-> 500)."""
from __future__ import annotations

import pytest

pytest.importorskip("psij", reason="needs the hpc extra (psij-python)")

from hypothesis import given, settings
from hypothesis import strategies as st

from radical.edge.plugins.psij.build import build_psij_spec
from radical.edge.plugins.psij.spec import (JobSpecError, normalize_executor, parse_duration,
                                            parse_job_spec)

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-10**40, 10**40)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
           | st.sampled_from(["1e30", "nan", "inf", "-5", "99999999-00:00:00", "1:2:3:4",
                              "10:00", "00:00:00", "1-", "", " ", "\n", "srun", "single"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=12)
FIELDS = ["arguments", "directory", "environment", "inherit_environment", "name",
          "launcher", "resources", "attributes", "duration", "queue_name", "node_count",
          "process_count", "custom_attributes", "stdout_path", "pre_launch"]
specs = st.fixed_dictionaries({"executable": st.just("/bin/true")},
                              optional={f: json_values for f in FIELDS}) | json_values
attributes = st.dictionaries(st.sampled_from(["duration", "walltime", "queue_name", "account",
                                              "node_count", "custom_attributes"]),
                             json_values, max_size=3)


@settings(max_examples=200, deadline=None)
@given(specs)
def test_any_job_spec_is_valid_or_a_job_spec_error(spec) -> None:
    try:
        req = parse_job_spec(spec)
    except JobSpecError:
        return
    for executor in ("local", "slurm", "pbs", "lsf"):
        try:
            build_psij_spec(req, executor, stdout_path="/tmp/o", stderr_path="/tmp/e")
        except JobSpecError:
            pass


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({"executable": st.just("/bin/true"), "attributes": attributes}))
def test_any_attributes_are_valid_or_a_job_spec_error(spec) -> None:
    try:
        req = parse_job_spec(spec)
    except JobSpecError:
        return
    build_psij_spec(req, "slurm", stdout_path="/tmp/o", stderr_path="/tmp/e")


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_durations_and_executors_only_raise_job_spec_errors(value) -> None:
    for check in (parse_duration, lambda v: normalize_executor(v, frozenset({"local"}))):
        try:
            check(value)
        except JobSpecError:
            pass


durations = (st.integers(-10**40, 10**40) | st.floats(allow_nan=True, allow_infinity=True)
             | st.integers(0, 10**6).map(lambda d: f"{d}-00:00:00")
             | st.from_regex(r"\A[0-9]{1,12}(:[0-9]{1,12}){0,2}\Z") | st.text(max_size=20))


@settings(max_examples=300, deadline=None)
@given(durations)
def test_any_duration_is_refused_or_renders_as_a_walltime(value) -> None:
    from radical.edge.plugins.psij.build import format_walltime, walltime

    try:
        seconds = parse_duration(value)
    except JobSpecError:
        return
    if seconds is not None:
        for executor in ("slurm", "pbs", "lsf"):
            assert format_walltime(walltime(seconds, executor), executor)
