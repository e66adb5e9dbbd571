"""The one polling wait of the tests: for state that has no event to wait on."""
from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, step: float = 0.05,
             what: str = "condition") -> Any:
    """`predicate()`'s first truthy value; AssertionError (naming `what`) after `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what} not met within {timeout} s")
