"""Fault-injection scenarios with ground truth, built from the demo's generator blocks.

Each fault type writes the same files as `generate_demo` (logs, metrics, changes, alert,
truth, topology, incident.yaml). Every scenario has decoy changes (one of them shortly before
the onset on another service) and background noise (a latency blip and a short error blip on
random services); the seed moves the onset, the alert, the decoys and the noise.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..core.model import iso
from .generator import alert_payload, background, write_dataset
from .logs import GEN, tpl
from .story import DemoSpec, Story, sample_times

__all__ = ["FAULTS", "generate_scenario"]

INT, LAT, CHOICE, ORDER = GEN["int"], GEN["lat"], GEN["choice"], GEN["order"]()


def _ramp(tmin: np.ndarray, start: float, end: float, level: float,
          rise: float = 1.0, fall: float = 2.0) -> np.ndarray:
    """0 before start, linear rise to level over `rise` min, level until end, linear fall."""
    up = np.clip((tmin - start) / rise, 0, 1)
    down = np.clip((end + fall - tmin) / fall, 0, 1)
    return level * np.minimum(up, down)


def _restart_lines(story: Story, svc: str, minutes: list[float], hashes: list[str],
                   msgs: list[str]) -> None:
    """Register deploys/rollbacks: counter resets, new replica names (one hash per generation)."""
    story.resets[svc] = sorted(story.resets.get(svc, []) + list(minutes))
    story.host_gens[svc] = (list(minutes), list(hashes))
    for k, (m, msg) in enumerate(zip(minutes, msgs, strict=True)):
        story.deploy_lines.append((m, svc, hashes[k], hashes[k + 1], msg))


class Plan:
    """Times and knobs of one scenario instance (drawn from the seed)."""

    def __init__(self, tmin: np.ndarray, seed: int, fault: str) -> None:
        """Draw onset (minute 100-111), alert (+4 to 6 min) and mitigation (+28 to 37 min)."""
        r = np.random.default_rng([seed, sorted(FAULTS).index(fault)])
        self.rng = r
        self.onset = float(100 + r.integers(0, 12))
        self.alert = self.onset + float(r.choice([4.0, 4.5, 5.0, 5.5, 6.0]))
        self.end = self.onset + float(r.integers(28, 38))
        self.tmin = tmin


def _noise(story: Story, plan: Plan) -> None:
    """Background noise: a 2-minute latency blip and a 30-second error blip."""
    r, t = plan.rng, story.tmin
    svc = str(r.choice([s for s in story.services if s != "inventory"]))
    at = float(r.integers(15, 45))
    story.slow_mult[svc] = story.ones(story.slow_mult, svc) * np.where(
        (t >= at) & (t < at + 2), 2.5, 1.0)
    svc2 = str(r.choice(story.services))
    at2 = float(r.integers(60, 85))
    chans = story.own_fail.setdefault(svc2, {})
    chans["blip"] = chans.get("blip", np.zeros_like(t)) + np.where(
        (t >= at2) & (t < at2 + 0.5), 0.08, 0.0)


DECOYS = [
    ("checkout", "deploy", "deploy checkout v5.3.{v} (cart summary tweaks)"),
    ("inventory", "config", "inventory: cache_ttl_seconds 300 -> {v}0"),
    ("frontend", "feature_flag", "enable flag recs-v2 for {v}0% of users"),
    ("payments", "config", "payments: log level info -> debug for {v} min"),
    ("postgres", "config", "postgres: autovacuum_naptime 60s -> {v}0s"),
    ("frontend", "deploy", "deploy frontend v9.1.{v} (copy changes)"),
]


def _decoys(plan: Plan, root: str, first_id: int = 2001) -> list[tuple]:
    """Four decoy changes on other services: early, mid, one shortly before onset, one after."""
    r = plan.rng
    pool = [d for d in DECOYS if d[0] != root]
    idx = r.permutation(len(pool))[:4]
    times = [float(r.integers(10, 40)), float(r.integers(45, 80)),
             plan.onset - float(r.integers(3, 12)), plan.end + float(r.integers(5, 20))]
    out = []
    for k, (i, m) in enumerate(zip(idx, times, strict=True)):
        svc, typ, desc = pool[int(i)]
        v = int(r.integers(1, 9))
        out.append((m, svc, typ, f"chg-{first_id + k}", desc.format(v=v),
                    f"1.{v}.0" if typ == "deploy" else None, str(r.choice(["ci-bot", "maria",
                                                                             "lee", "dba"]))))
    return out


def _bad_deploy(st: Story, p: Plan) -> dict[str, Any]:
    """Checkout deploy throws NullPointerExceptions; frontend fails upstream."""
    t, o = st.tmin, p.onset
    dep = o - 2
    st.own_fail["checkout"] = {"bug": _ramp(t, o, p.end, 0.3)}
    _restart_lines(st, "checkout", [dep, p.end], ["4c1e2", "9a7b3", "2d8f0"],
                   ["starting checkout version 5.4.0", "starting checkout version 5.3.9"])
    st.extra_templates["checkout"] = [
        ("error", lambda c: 2.0 * c["bug"],
         tpl("NullPointerException in PromotionService.apply for order {o}", o=ORDER), 500),
        ("error", lambda c: 0.8 * c["bug"],
         tpl("unhandled exception in POST /checkout: java.lang.NullPointerException at "
             "PromotionService.java:{n}", n=INT(100, 140)), 500),
    ]
    changes = [(dep, "checkout", "deploy", "chg-3001",
                "deploy checkout v5.4.0 (new promotions engine)", "5.4.0", "ci-bot"),
               (p.end, "checkout", "rollback", "chg-3002", "roll back checkout to v5.3.9",
                "5.3.9", "oncall")]
    return {"root": "checkout", "change": "chg-3001", "alert": "checkout",
            "affected": ["checkout", "frontend"], "changes": changes}


def _pool(st: Story, p: Plan) -> dict[str, Any]:
    """Inventory config shrinks its DB pool to 4; pool exhausted, callers fail."""
    t, o = st.tmin, p.onset
    chg = o - 1
    st.own_fail["inventory"] = {"pool": _ramp(t, o, p.end, 0.25)}
    on = (t >= chg) & (t < p.end)
    st.pool_max["inventory"] = np.where(on, 4.0, 20.0)
    st.pool_inuse["inventory"] = np.where(on, 4.0, np.nan)
    st.extra_templates["inventory"] = [
        ("error", lambda c: 3.0 * c["pool"],
         tpl("could not get JDBC connection for sku {s}: pool exhausted (4/4 in use, {w} "
             "waiting)", s=INT(1000, 9999), w=INT(3, 40)), 503),
    ]
    changes = [(chg, "inventory", "config", "chg-3101", "inventory: db.pool.max_size 20 -> 4",
                None, "maria"),
               (p.end, "inventory", "rollback", "chg-3102",
                "revert inventory db.pool.max_size to 20", None, "oncall")]
    return {"root": "inventory", "change": "chg-3101", "alert": "checkout",
            "affected": ["inventory", "checkout", "frontend"], "changes": changes}


def _oom(st: Story, p: Plan) -> dict[str, Any]:
    """Payments deploy leaks memory; OOM kills every 12 min, each with an error burst."""
    t, o = st.tmin, p.onset
    dep, period, leak = o - 14, 12.0, 212e6
    kills = [o + k * period for k in range(4) if o + k * period < p.end]
    mem = np.zeros_like(t)
    starts = [dep + 1.0, *kills]
    for a, b in zip(starts, [*kills, p.end], strict=True):
        seg = (t >= a) & (t < b)
        mem[seg] = np.minimum(leak * (t[seg] - a) / period, leak)
    st.mem_extra["payments"] = mem
    oom = np.zeros_like(t)
    for k in kills:
        oom = np.maximum(oom, _ramp(t, k, k + 2.5, 0.35, rise=0.25, fall=0.5))
    st.own_fail["payments"] = {"oom": oom}
    st.resets["payments"] = [dep, *kills, p.end]
    st.host_gens["payments"] = ([dep, p.end], ["6b7d4", "3e5c8", "5d0e9"])
    st.deploy_lines += [(dep, "payments", "6b7d4", "3e5c8", "starting payments version 2.15.0"),
                        (p.end, "payments", "3e5c8", "5d0e9", "starting payments version 2.14.3")]
    st.extra_templates["payments"] = [
        ("error", lambda c: 1.5 * c["oom"],
         tpl("java.lang.OutOfMemoryError: Java heap space while authorizing order {o}",
             o=ORDER), 503),
        ("warn", lambda c: 0.5 * c["oom"],
         tpl("container restarted after OOMKilled (exit code 137), warming caches: {n} "
             "accounts", n=INT(100, 900)), None),
    ]
    changes = [(dep, "payments", "deploy", "chg-3201",
                "deploy payments v2.15.0 (in-memory account cache)", "2.15.0", "ci-bot"),
               (p.end, "payments", "rollback", "chg-3202", "roll back payments to v2.14.3",
                "2.14.3", "oncall")]
    return {"root": "payments", "change": "chg-3201", "alert": "checkout",
            "affected": ["payments", "checkout", "frontend"], "changes": changes}


def _outage(st: Story, p: Plan) -> dict[str, Any]:
    """Postgres goes into recovery, no change; every service above it fails."""
    t, o = st.tmin, p.onset
    st.own_fail["postgres"] = {"down": _ramp(t, o, p.end, 0.3)}
    st.upstream_msg["postgres"] = ("db query failed: connection to postgres:5432 refused "
                                   "(ECONNREFUSED) after {ms}ms (request {o})")
    st.extra_templates["postgres"] = [
        ("error", lambda c: 3.0 * c["down"],
         tpl("FATAL: the database system is in recovery mode (pid {p})", p=INT(1000, 60000)),
         None),
        ("error", lambda c: 0.5 * c["down"],
         tpl("LOG: could not receive data from client: Connection reset by peer"), None),
    ]
    changes = [(p.end - 1, "postgres", "infra", "chg-3301",
                "promote postgres replica pg-2 to primary (failover)", None, "dba")]
    return {"root": "postgres", "change": None, "alert": "frontend",
            "affected": ["postgres", "payments", "inventory", "checkout", "frontend"],
            "changes": changes}


def _surge(st: Story, p: Plan) -> dict[str, Any]:
    """Traffic triples at the frontend, no change; inventory saturates and sheds load."""
    t, o = st.tmin, p.onset
    surge = 1.0 + _ramp(t, o - 3, p.end, 2.0, rise=3.0, fall=3.0)
    for svc, share in (("frontend", 1.0), ("checkout", 0.8), ("inventory", 1.0),
                       ("payments", 0.8), ("postgres", 0.9)):
        st.rps_mult[svc] = 1.0 + share * (surge - 1.0)
    over = _ramp(t, o, p.end, 0.15)
    st.own_fail["inventory"] = {"overload": over}
    st.slow_mult["inventory"] = st.ones(st.slow_mult, "inventory") * (1 + 20 * over)
    st.cpu_extra["inventory"] = 1.2 * (surge - 1.0) / 2.0
    st.extra_templates["inventory"] = [
        ("warn", lambda c: 2.0 * c["overload"],
         tpl("request queue full ({q} waiting), rejecting request for sku {s}",
             q=INT(200, 1000), s=INT(1000, 9999)), 503),
    ]
    return {"root": "frontend", "change": None, "alert": "frontend",
            "affected": ["frontend", "inventory", "checkout"], "changes": []}


def _flag(st: Story, p: Plan) -> dict[str, Any]:
    """A frontend feature flag at 100% breaks the checkout page."""
    t, o = st.tmin, p.onset
    chg = o - 1
    st.own_fail["frontend"] = {"flag": _ramp(t, o, p.end, 0.2)}
    st.extra_templates["frontend"] = [
        ("error", lambda c: 3.0 * c["flag"],
         tpl("TypeError: Cannot read properties of undefined (reading 'items') in "
             "CheckoutRedesign.render (session {s})", s=INT(10**6, 10**7)), 500),
    ]
    changes = [(chg, "frontend", "feature_flag", "chg-3401",
                "enable flag checkout-redesign for 100% of users", None, "lee"),
               (p.end, "frontend", "feature_flag", "chg-3402",
                "disable flag checkout-redesign", None, "oncall")]
    return {"root": "frontend", "change": "chg-3401", "alert": "frontend",
            "affected": ["frontend"], "changes": changes}


def _cert(st: Story, p: Plan) -> dict[str, Any]:
    """Inventory's TLS certificate expires, no change; callers log x509 errors."""
    t, o = st.tmin, p.onset
    down = _ramp(t, o, p.end, 1.0, rise=0.25, fall=0.5)
    st.seen_fail["inventory"] = down
    st.edge[("frontend", "inventory")] = 0.15
    st.edge[("checkout", "inventory")] = 0.3
    st.rps_mult["inventory"] = 1.0 - 0.85 * down
    st.rps_mult["postgres"] = 1.0 - 0.5 * down
    st.upstream_msg["inventory"] = (
        "call to inventory failed: tls: failed to verify certificate for "
        "inventory.shop.svc: x509: certificate has expired or is not yet valid (request {o}, "
        "{ms}ms)")
    changes = [(p.end, "inventory", "infra", "chg-3501",
                "renew TLS certificate for inventory.shop.svc", None, "oncall")]
    return {"root": "inventory", "change": None, "alert": "checkout",
            "affected": ["inventory", "checkout", "frontend"], "changes": changes}


def _disk(st: Story, p: Plan) -> dict[str, Any]:
    """The disk of one inventory host fills, no change; a third of its requests fail."""
    t, o = st.tmin, p.onset
    st.own_fail["inventory"] = {"disk": _ramp(t, o, p.end, 0.3)}
    st.extra_templates["inventory"] = [
        ("error", lambda c: 3.0 * c["disk"],
         tpl("failed to write reservation journal /var/lib/inventory/journal-{n}.log: No "
             "space left on device", n=INT(100, 999)), 503, "inventory-7f9c-b"),
    ]
    changes = [(p.end, "inventory", "infra", "chg-3601",
                "free disk on inventory-7f9c-b (rotate journals)", None, "oncall")]
    return {"root": "inventory", "change": None, "alert": "checkout",
            "affected": ["inventory", "checkout", "frontend"], "changes": changes}


def _neighbour(st: Story, p: Plan) -> dict[str, Any]:
    """A reports batch job burns the CPU of payments' node; payments times out."""
    t, o = st.tmin, p.onset
    st.services.append("reports")
    st.calls["reports"] = []
    st.base_rps["reports"] = 1.0
    st.median_s["reports"] = 0.2
    st.log_rate["reports"] = 2.0
    job = _ramp(t, o - 2, p.end, 1.0, rise=2.0)
    st.cpu_extra["reports"] = 1.8 * job
    starve = _ramp(t, o, p.end, 0.15)
    st.own_fail["payments"] = {"starved": starve}
    st.slow_mult["payments"] = st.ones(st.slow_mult, "payments") * (1 + 30 * starve)
    st.extra_templates["payments"] = [
        ("warn", lambda c: 1.5 * c["starved"],
         tpl("event loop lag {ms}ms: worker threads starved for CPU", ms=LAT(800)), None),
        ("error", lambda c: 1.0 * c["starved"],
         tpl("authorize timed out for order {o} after 2000ms", o=ORDER), 503),
    ]
    start = o - 2
    st.extra_templates["reports"] = [
        ("info", lambda c: 4.0 * ((c.t >= start) & (c.t < p.end)),
         tpl("export batch {b}: {n} rows aggregated in {ms}ms", b=INT(1, 500),
             n=INT(10**4, 10**6), ms=LAT(3000)), None),
    ]
    return {"root": "reports", "change": None, "alert": "checkout",
            "affected": ["payments", "checkout", "frontend"], "changes": [],
            "topology_extra": {"hosts": {"node-4": ["payments", "reports"]}}}


FAULTS: dict[str, Callable[[Story, Plan], dict[str, Any]]] = {
    "bad_deploy": _bad_deploy,
    "db_pool_exhaustion": _pool,
    "memory_leak_oom": _oom,
    "downstream_outage": _outage,
    "traffic_surge": _surge,
    "config_flag_change": _flag,
    "certificate_expiry": _cert,
    "disk_full": _disk,
    "noisy_neighbour": _neighbour,
}


def generate_scenario(out: str | Path, fault: str, seed: int = 1, size: int = 50_000,
                      start: str = "2026-11-20T09:00:00Z") -> Path:
    """Write one fault scenario (same files as generate_demo) and its truth.json."""
    if fault not in FAULTS:
        raise InputError(f"unknown fault {fault!r}: use one of {', '.join(FAULTS)}")
    spec = DemoSpec(seed=seed, size=size, start=start)
    t0, ts, tmin = sample_times(spec)
    story = background(Story(tmin=tmin))
    plan = Plan(tmin, seed, fault)
    info = FAULTS[fault](story, plan)
    _noise(story, plan)
    decoys = _decoys(plan, info["root"])
    changes = sorted([*info["changes"], *decoys], key=lambda c: c[0])
    at = lambda m: t0 + pd.Timedelta(minutes=m)  # noqa: E731
    svc = info["alert"]
    alert = alert_payload("HighErrorRate", svc, at(plan.alert),
                          f"{svc} errors or latency above SLO for 5 minutes",
                          f"SLO burn on {svc}")
    truth = {
        "onset": iso(at(plan.onset)), "alert": iso(at(plan.alert)),
        "mitigated": iso(at(plan.end)), "root_cause_service": info["root"],
        "root_cause_change": info["change"], "affected_services": info["affected"],
        "decoy_changes": [d[3] for d in decoys], "fault": fault, "seed": seed,
    }
    topo = {"calls": story.calls, "entrypoints": story.entrypoints,
            **info.get("topology_extra", {})}
    return write_dataset(out, spec, story, t0, ts, changes, alert, truth, topo)
