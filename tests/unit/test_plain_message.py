"""`errors.plain_message`: exception texts for people, without Python reprs of paths."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from radical.edge.errors import plain_message


def test_os_errors_name_the_plain_path():
    exc = FileNotFoundError(2, "No such file or directory", Path("/no/such"))
    assert "PosixPath" in str(exc)  # what Python itself says
    assert plain_message(exc) == "No such file or directory: '/no/such'"


def test_path_reprs_inside_texts_become_plain_paths():
    text = f"Failed to submit job: [Errno 20] Not a directory: {Path('/etc/passwd')!r}"
    assert plain_message(RuntimeError(text)) == \
        "Failed to submit job: [Errno 20] Not a directory: '/etc/passwd'"
    assert plain_message(f"at {PurePosixPath('/a b')!r}") == "at '/a b'"


def test_other_texts_are_left_alone():
    assert plain_message(ValueError("bad value 'x'")) == "bad value 'x'"
    assert plain_message(OSError("plain")) == "plain"
