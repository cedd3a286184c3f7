"""Deterministic demo telemetry for a small shop with one injected incident.

A bad deploy of payments leaks database connections; its pool is exhausted two minutes later,
payments answers 503, checkout (its caller) and frontend fail upstream, new error log templates
appear, and a rollback restores health. Decoy changes and background noise are included.

The generator is built from parameterised blocks (`Story`, `write_dataset`) that
`incident_lib.demo.scenarios` reuses to inject other fault types.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..core.model import iso
from ..core.storage import atomic_write_json, atomic_write_text, atomic_write_with
from .logs import write_logs as _write_logs
from .story import (
    ALERT_MIN,
    BUCKETS,
    DEPLOY_MIN,
    ONSET_MIN,
    POOL_SERVICES,
    RECOVER_MIN,
    ROLLBACK_MIN,
    SCRAPE,
    SERVICES,
    TOPOLOGY,
    DemoSpec,
    Story,
    sample_times,
)

__all__ = ["DemoSpec", "Story", "generate_demo", "demo_story", "write_dataset", "alert_payload",
           "sample_times", "SERVICES", "TOPOLOGY"]

def _phase(tmin: np.ndarray) -> np.ndarray:
    """Share of payments requests failing at each time (0 outside the incident)."""
    p = np.zeros_like(tmin)
    ramp = (tmin >= ONSET_MIN) & (tmin < ONSET_MIN + 1)
    p[ramp] = 0.4 * (tmin[ramp] - ONSET_MIN)
    p[(tmin >= ONSET_MIN + 1) & (tmin < ROLLBACK_MIN)] = 0.4
    dec = (tmin >= ROLLBACK_MIN) & (tmin < RECOVER_MIN)
    p[dec] = 0.4 * (RECOVER_MIN - tmin[dec]) / (RECOVER_MIN - ROLLBACK_MIN)
    return p


def background(story: Story) -> Story:
    """Noise present in every dataset: a short inventory slow-query blip at minute 50."""
    t = story.tmin
    blip = (t >= 50) & (t < 53)
    story.slow_mult["inventory"] = story.ones(story.slow_mult, "inventory") * np.where(
        blip, 2.0, 1.0)
    return story


def demo_story(tmin: np.ndarray) -> Story:
    """The default story: payments deploy leaks DB connections, pool exhausted, rollback."""
    st = background(Story(tmin=tmin))
    st.own_fail["payments"] = {"pool": _phase(tmin)}
    st.mem_extra["payments"] = np.where((tmin >= DEPLOY_MIN) & (tmin < ROLLBACK_MIN), 40e6, 0.0)
    inuse = np.full_like(tmin, np.nan)
    leak = (tmin >= DEPLOY_MIN + 1) & (tmin < ONSET_MIN)
    inuse[leak] = np.minimum(20, 5 + 15 * (tmin[leak] - DEPLOY_MIN - 1))
    inuse[(tmin >= ONSET_MIN) & (tmin < ROLLBACK_MIN)] = 20
    st.pool_inuse["payments"] = inuse
    st.resets["payments"] = [DEPLOY_MIN, ROLLBACK_MIN]
    st.host_gens["payments"] = ([DEPLOY_MIN, ROLLBACK_MIN], ["6b7d4", "8f2a1", "5d0e9"])
    st.deploy_lines = [(DEPLOY_MIN, "payments", "6b7d4", "8f2a1",
                        "starting payments version 2.14.0 with db pool max=20"),
                       (ROLLBACK_MIN, "payments", "8f2a1", "5d0e9",
                        "starting payments version 2.13.2 with db pool max=20")]
    st.recs_from = 96.0
    return st


def generate_demo(out: str | Path, spec: DemoSpec | None = None, end_now: bool = False) -> Path:
    """Write logs.ndjson, metrics.om, changes.ndjson, alert.json, truth.json, incident.yaml."""
    spec = spec or DemoSpec()
    start, ts, tmin = sample_times(spec, end_now)
    at = lambda m: start + pd.Timedelta(minutes=m)  # noqa: E731
    changes = [
        (25, "checkout", "deploy", "chg-1001", "deploy checkout v5.3.1 (new cart summary)",
         "5.3.1", "ci-bot"),
        (65, "inventory", "config", "chg-1002", "inventory: cache_ttl_seconds 300 -> 120",
         None, "maria"),
        (96, "frontend", "feature_flag", "chg-1003", "enable flag recs-v2 for 10% of users",
         None, "lee"),
        (DEPLOY_MIN, "payments", "deploy", "chg-1004",
         "deploy payments v2.14.0 (refactor account lookup)", "2.14.0", "ci-bot"),
        (ROLLBACK_MIN, "payments", "rollback", "chg-1005", "roll back payments to v2.13.2",
         "2.13.2", "oncall"),
        (160, "postgres", "config", "chg-1006", "postgres: autovacuum_naptime 60s -> 30s",
         None, "dba"),
    ]
    alert = alert_payload("HighErrorRate", "checkout", at(ALERT_MIN),
                          "checkout 5xx above 5% for 5 minutes",
                          "error ratio on checkout is above 0.05")
    truth = {
        "onset": iso(at(ONSET_MIN)), "alert": iso(at(ALERT_MIN)),
        "mitigated": iso(at(RECOVER_MIN)),
        "root_cause_service": "payments", "root_cause_change": "chg-1004",
        "affected_services": ["payments", "checkout", "frontend"],
        "decoy_changes": ["chg-1001", "chg-1002", "chg-1003", "chg-1006"],
        "fault": "bad_deploy_db_pool_exhaustion",
    }
    return write_dataset(out, spec, demo_story(tmin), start, ts, changes, alert, truth)


def alert_payload(alertname: str, service: str, at: pd.Timestamp, summary: str,
                  description: str) -> dict[str, Any]:
    """An Alertmanager webhook (v4) payload for one firing alert."""
    labels = {"alertname": alertname, "service": service, "severity": "page", "team": "shop"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "incident-lib",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {"summary": summary},
        "externalURL": "http://alertmanager.local:9093",
        "alerts": [{
            "status": "firing", "labels": labels,
            "annotations": {"summary": summary, "description": description},
            "startsAt": iso(at), "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local:9090/graph", "fingerprint": "a1b2c3d4e5f60718",
        }],
    }


def write_dataset(out: str | Path, spec: DemoSpec, story: Story, start: pd.Timestamp,
                  ts: np.ndarray, changes: list[tuple], alert: dict[str, Any],
                  truth: dict[str, Any], topology: dict[str, Any] | None = None) -> Path:
    """Write the seven dataset files for a story (metrics, logs, changes, alert, truth, ...)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    tmin = story.tmin
    season = 1.0 + 0.15 * np.sin(2 * np.pi * tmin / 180.0)
    _write_metrics(out / "metrics.om", rng, ts, tmin, story, season)
    _write_logs(out / "logs.ndjson", rng, spec.size, ts, tmin, story, season)
    lines = []
    for m, svc, typ, cid, desc, ver, who in changes:
        rec = {"@timestamp": iso(start + pd.Timedelta(minutes=m)), "service.name": svc,
               "change.type": typ, "change.id": cid, "change.description": desc,
               "user.name": who}
        if ver:
            rec["service.version"] = ver
        lines.append(json.dumps(rec))
    atomic_write_text(out / "changes.ndjson", "\n".join(lines) + "\n")
    atomic_write_json(out / "alert.json", alert)
    atomic_write_json(out / "truth.json", truth)
    topo = topology or {"calls": story.calls, "entrypoints": story.entrypoints}
    atomic_write_text(out / "topology.yaml", yaml.safe_dump(topo, sort_keys=False))
    config = {
        "sources": {
            "metrics": {"kind": "files", "path": "metrics.om"},
            "logs": {"kind": "files", "path": "logs.ndjson"},
            "changes": {"kind": "files", "path": "changes.ndjson"},
        },
        "topology": "topology.yaml",
    }
    atomic_write_text(out / "incident.yaml", yaml.safe_dump(config, sort_keys=False))
    return out


def _counter(incs: np.ndarray, resets: np.ndarray, start: float = 0.0) -> np.ndarray:
    """Cumulative counter from increments, reset to 0 at the given sample indices."""
    out = np.empty_like(incs, dtype=float)
    acc = float(start)
    for i, x in enumerate(incs):
        if resets[i]:
            acc = 0.0
        acc += x
        out[i] = acc
    return out


def _write_metrics(path: Path, rng: np.random.Generator, ts: np.ndarray, tmin: np.ndarray,
                   story: Story, season: np.ndarray) -> None:
    """Write the OpenMetrics file: requests, latency histogram, CPU, memory, DB pool."""
    from scipy.stats import lognorm

    n = len(ts)
    fams: dict[str, list[str]] = {k: [] for k in
                                  ["req", "hist", "cpu", "mem", "pool", "poolmax"]}
    ts_txt = [f"{t:.3f}" for t in ts]
    for svc in story.services:
        resets = np.zeros(n, dtype=bool)
        if story.resets.get(svc):
            idx = np.searchsorted(tmin, story.resets[svc])
            resets[idx[idx < n]] = True  # restarts after the end of the data do not show
        rps = story.base_rps[svc] * season * story.ones(story.rps_mult, svc)
        total = rng.poisson(rps * SCRAPE)
        fail = story.fail(svc)
        n5xx_inc = rng.binomial(total, fail)
        n500 = rng.binomial(total - n5xx_inc, 0.002)
        n404 = rng.binomial(total - n5xx_inc - n500, 0.01)
        n200 = total - n5xx_inc - n500 - n404
        for status, incs in (("200", n200), ("404", n404), ("500", n500), ("503", n5xx_inc)):
            vals = _counter(incs, resets, float(rng.integers(1000, 50000)))
            lab = f'service="{svc}",status="{status}"'
            fams["req"] += [f"http_requests_total{{{lab}}} {v:.0f} {t}"
                            for v, t in zip(vals, ts_txt, strict=True)]
        # latency histogram: ok requests lognormal (slower in the incident), failures ~5 s
        med = story.median_s[svc]
        slow = np.where(fail > 0, 1.0 + 2.0 * fail / 0.4, 1.0) * story.ones(story.slow_mult, svc)
        ok_n = total - n5xx_inc
        scale = med * slow
        edges = np.array(BUCKETS[:-1])[:, None]
        cdf = np.vstack([lognorm.cdf(edges, 0.5, scale=scale[None, :]), np.ones((1, n))])
        probs = np.clip(np.diff(np.vstack([np.zeros((1, n)), cdf]), axis=0), 0, None)
        probs /= probs.sum(axis=0, keepdims=True)
        cum = np.zeros((len(BUCKETS), n))
        k10 = BUCKETS.index(10.0)
        for j in range(n):
            counts = rng.multinomial(int(ok_n[j]), probs[:, j])
            counts[k10] += int(n5xx_inc[j])  # failures wait for the 5 s timeout
            cum[:, j] = np.cumsum(counts)
        lat_sum = ok_n * scale * np.exp(0.125) + n5xx_inc * 5.05
        for b, le in enumerate(BUCKETS):
            vals = _counter(cum[b], resets)
            le_txt = "+Inf" if np.isinf(le) else repr(float(le))
            lab = f'service="{svc}",le="{le_txt}"'
            fams["hist"] += [f"http_request_duration_seconds_bucket{{{lab}}} {v:.0f} {t}"
                             for v, t in zip(vals, ts_txt, strict=True)]
        for suffix, incs, fmt in (("count", total, ".0f"), ("sum", lat_sum, ".3f")):
            vals = _counter(incs, resets)
            fams["hist"] += [f'http_request_duration_seconds_{suffix}{{service="{svc}"}} '
                             f"{v:{fmt}} {t}" for v, t in zip(vals, ts_txt, strict=True)]
        cpu = 0.05 + 0.01 * rps + 0.3 * fail + story.ones(story.cpu_extra, svc, 0.0)
        cpu_inc = SCRAPE * cpu * rng.uniform(0.9, 1.1, n)
        vals = _counter(cpu_inc, resets)
        fams["cpu"] += [f'process_cpu_seconds_total{{service="{svc}"}} {v:.3f} {t}'
                        for v, t in zip(vals, ts_txt, strict=True)]
        mem = 300e6 * (1 + 0.02 * rng.standard_normal(n)) + story.ones(story.mem_extra, svc, 0.0)
        fams["mem"] += [f'process_resident_memory_bytes{{service="{svc}"}} {v:.0f} {t}'
                        for v, t in zip(mem, ts_txt, strict=True)]
        if svc in POOL_SERVICES:
            inuse = np.clip(rng.poisson(5, n), 0, 20).astype(float)
            over = story.pool_inuse.get(svc)
            if over is not None:
                inuse = np.where(np.isfinite(over), over, inuse)
            pmax = story.ones(story.pool_max, svc, 20.0)
            fams["pool"] += [f'db_pool_connections_in_use{{service="{svc}"}} {v:.0f} {t}'
                             for v, t in zip(inuse, ts_txt, strict=True)]
            fams["poolmax"] += [f'db_pool_connections_max{{service="{svc}"}} {v:.0f} {t}'
                                for v, t in zip(pmax, ts_txt, strict=True)]
    header = {
        "req": "# HELP http_requests HTTP requests served.\n# TYPE http_requests counter",
        "hist": "# HELP http_request_duration_seconds Request latency.\n"
                "# TYPE http_request_duration_seconds histogram\n"
                "# UNIT http_request_duration_seconds seconds",
        "cpu": "# HELP process_cpu_seconds CPU time.\n# TYPE process_cpu_seconds counter\n"
               "# UNIT process_cpu_seconds seconds",
        "mem": "# HELP process_resident_memory_bytes Resident memory.\n"
               "# TYPE process_resident_memory_bytes gauge\n"
               "# UNIT process_resident_memory_bytes bytes",
        "pool": "# HELP db_pool_connections_in_use Connections checked out.\n"
                "# TYPE db_pool_connections_in_use gauge",
        "poolmax": "# HELP db_pool_connections_max Pool size.\n"
                   "# TYPE db_pool_connections_max gauge",
    }

    def _write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            for key, rows in fams.items():
                fh.write(header[key] + "\n")
                if key == "hist":
                    rows = _group_histogram(rows, n, len(story.services))
                fh.write("\n".join(rows) + "\n")
            fh.write("# EOF\n")

    atomic_write_with(path, _write)


def _group_histogram(rows: list[str], n: int, n_series: int) -> list[str]:
    """Order histogram lines per series and timestamp (buckets, count, sum together)."""
    per = len(rows) // n  # lines per time step across all series
    blocks = [rows[i * n:(i + 1) * n] for i in range(per)]
    per_series = per // n_series
    out = []
    for s in range(n_series):
        mine = blocks[s * per_series:(s + 1) * per_series]
        for j in range(n):
            out.extend(b[j] for b in mine)
    return out


