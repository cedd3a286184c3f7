"""The demo's story: the shop's services, topology and timing, and `Story`, what happens to each
service over time. The generator (metrics, changes, alert) and the log writer both build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DemoSpec", "Story", "sample_times", "SERVICES", "TOPOLOGY", "SCRAPE", "OFFSET",
           "BUCKETS", "BASE_RPS", "MEDIAN_S", "EDGE", "POOL_SERVICES", "DEPLOY_MIN", "ONSET_MIN",
           "ALERT_MIN", "ROLLBACK_MIN", "RECOVER_MIN"]

SERVICES = ["frontend", "checkout", "payments", "inventory", "postgres"]
TOPOLOGY = {
    "calls": {
        "frontend": ["checkout", "inventory"],
        "checkout": ["payments", "inventory"],
        "payments": ["postgres"],
        "inventory": ["postgres"],
        "postgres": [],
    },
    "entrypoints": ["frontend"],
}
SCRAPE = 15.0
OFFSET = 5.0  # scrape phase: samples at :05, :20, :35, :50
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, np.inf]
# minutes from the start of the data
DEPLOY_MIN, ONSET_MIN, ALERT_MIN, ROLLBACK_MIN, RECOVER_MIN = 100.0, 102.0, 107.0, 140.0, 142.0
BASE_RPS = {"frontend": 40.0, "checkout": 12.0, "payments": 10.8, "inventory": 24.0,
            "postgres": 35.0}
MEDIAN_S = {"frontend": 0.08, "checkout": 0.06, "payments": 0.04, "inventory": 0.02,
            "postgres": 0.003}
# share of a caller's requests that fail when a callee fails completely
EDGE = {("frontend", "checkout"): 0.3, ("frontend", "inventory"): 0.3,
        ("checkout", "payments"): 0.9, ("checkout", "inventory"): 0.5,
        ("payments", "postgres"): 0.9, ("inventory", "postgres"): 0.9}
POOL_SERVICES = ("payments", "inventory")


@dataclass(frozen=True)
class DemoSpec:
    """What to generate: seed, number of log lines, start time, duration."""

    seed: int = 42
    size: int = 200_000
    start: str = "2026-11-20T09:00:00Z"
    hours: float = 3.0


@dataclass
class Story:
    """What happens to each service over time (arrays are per sample time; absent = normal)."""

    tmin: np.ndarray
    services: list[str] = field(default_factory=lambda: list(SERVICES))
    calls: dict[str, list[str]] = field(default_factory=lambda: {
        k: list(v) for k, v in TOPOLOGY["calls"].items()})
    entrypoints: list[str] = field(default_factory=lambda: ["frontend"])
    base_rps: dict[str, float] = field(default_factory=lambda: dict(BASE_RPS))
    median_s: dict[str, float] = field(default_factory=lambda: dict(MEDIAN_S))
    log_rate: dict[str, float] = field(default_factory=dict)
    edge: dict[tuple[str, str], float] = field(default_factory=lambda: dict(EDGE))
    own_fail: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seen_fail: dict[str, np.ndarray] = field(default_factory=dict)
    rps_mult: dict[str, np.ndarray] = field(default_factory=dict)
    slow_mult: dict[str, np.ndarray] = field(default_factory=dict)
    cpu_extra: dict[str, np.ndarray] = field(default_factory=dict)
    mem_extra: dict[str, np.ndarray] = field(default_factory=dict)
    pool_inuse: dict[str, np.ndarray] = field(default_factory=dict)
    pool_max: dict[str, np.ndarray] = field(default_factory=dict)
    resets: dict[str, list[float]] = field(default_factory=dict)
    host_gens: dict[str, tuple[list[float], list[str]]] = field(default_factory=dict)
    extra_templates: dict[str, list[Any]] = field(default_factory=dict)
    upstream_msg: dict[str, str] = field(default_factory=dict)
    deploy_lines: list[tuple[float, str, str, str, str]] = field(default_factory=list)
    recs_from: float = float("inf")  # minute the recs-v2 flag starts logging

    def channels(self, svc: str) -> dict[str, np.ndarray]:
        """Failure share of svc by cause: its own channels plus `up:<callee>` channels."""
        out = dict(self.own_fail.get(svc, {}))
        for callee in self.calls.get(svc, []):
            seen = self.seen(callee)
            if np.any(seen > 0):
                out[f"up:{callee}"] = self.edge.get((svc, callee), 0.5) * seen
        return out

    def fail(self, svc: str) -> np.ndarray:
        """Total share of svc's requests failing at each sample time."""
        chans = list(self.channels(svc).values())
        if not chans:
            return np.zeros_like(self.tmin)
        total = chans[0]
        for c in chans[1:]:
            total = total + c
        return np.minimum(total, 0.95)

    def seen(self, svc: str) -> np.ndarray:
        """Failure share callers of svc see (its own failures unless overridden)."""
        return self.seen_fail[svc] if svc in self.seen_fail else self.fail(svc)

    def ones(self, table: dict[str, np.ndarray], svc: str, default: float = 1.0) -> np.ndarray:
        """table[svc] or a constant array."""
        return table[svc] if svc in table else np.full_like(self.tmin, default)


def sample_times(spec: DemoSpec, end_now: bool = False) -> tuple[pd.Timestamp, np.ndarray,
                                                                  np.ndarray]:
    """Data start, scrape times (epoch seconds) and their minute offsets."""
    start = pd.Timestamp(spec.start)
    if end_now:
        now = pd.Timestamp.now(tz="UTC").floor("15s")
        start = now - pd.Timedelta(hours=spec.hours)
    t0 = start.timestamp()
    n_int = int(spec.hours * 3600 / SCRAPE)
    ts = t0 + OFFSET + SCRAPE * np.arange(n_int)
    return start, ts, (ts - t0) / 60.0
