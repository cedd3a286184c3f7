"""Polling a condition with a deadline (no sleep stands in for a condition in the tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(what: Callable[[], Any], timeout: float,
             msg: Callable[[], str] = lambda: "condition not met", interval: float = 0.2) -> Any:
    """What `what()` returns once it is truthy; AssertionError with msg() after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s: {msg()}")
