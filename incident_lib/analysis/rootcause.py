"""Root-cause ranking of services from several kinds of evidence, with ties and abstention.

Inputs are the per-service tables of analysis.evidence (metrics, logs, names),
analysis.traces and analysis.behaviour (what each operation's executions do). Each kind of
evidence gives every service a non-negative statistic; a kind counts for a service only past
its gate (an absolute bar: a significance or an effect size
that fault-free data does not reach). Within one investigation every kind is scaled by its
strongest service (so each kind adds at most 1) and the scaled kinds are summed: a service is
ranked by how many independent views single it out and how clearly, and no kind wins by a
fixed weight alone. This is the "multi-source, rank-normalised" combination of Eadro (Lee et
al., ICSE 2023) and Nezha (Yu et al., FSE 2023) without learned weights; PDiagnose (Hou et
al., ISPA 2021) votes over kinds the same way.

Call-graph direction (MicroRank, Yu et al. WWW 2021; MicroRCA, Wu et al. NOMS 2020): a service
whose callee is at least as anomalous is likely a victim of it; `victim_factor` scales its
score down. Measured on published fault injections (BENCHMARKS.md) it did not help while the
metric kind mixed propagated signals (latency, errors); with the metric kind on a pod's own
state it does, and the default halves a victim's score.

Equal scores share a rank (competition ranking "1, 1, 3"); they are never broken by name.
A root cause is stated only when the top score passes `min_score` and leads the next service
by `min_margin`; otherwise `root_cause` is None ("no incident" or "inconclusive").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["KINDS", "RankConfig", "evidence_table", "rank_services", "root_cause_of"]

# kind -> (description for the evidence text, default gate)
KINDS: dict[str, tuple[str, float]] = {
    "metric": ("own resource excursion beyond the baseline's peak (worst pod and signal)",
               10.0),
    "error_share": ("share of error/exception log lines rose (new or surging)", 0.01),
    "template_down": ("log templates dropped or vanished (-log10 p)", 3.0),
    "template_up": ("log templates new or surging (-log10 p)", 3.0),
    "pattern_shift": ("log template mix moved beyond sampling noise (TV distance)", 0.01),
    "volume_down": ("log volume fell relative to all services (log ratio)", 0.1),
    "named": ("named in other services' error lines (-log10 p)", 3.0),
    "trace_slow": ("spans slower than their operation's baseline p95, self time (-log10 p)",
                   3.0),
    "trace_calls_down": ("fewer spans reach it: missing subtrees (-log10 p)", 3.0),
    "trace_errors": ("error spans rose (-log10 p)", 3.0),
    "trace_link": ("calls to and from it slowed on the wire: slow links' effect times their "
                   "share of its links", 0.2),
    "behaviour": ("an operation's executions changed their logs, spans or calls (share, lower "
                  "bound)", 0.2),
}
# Signals of a pod's OWN state. A pod's server latency includes the time spent in its callees,
# its error rate includes its callees' errors and its traffic follows its callers: those
# propagate along the call graph and stay in the triage, but do not single out a service.
METRIC_ROLES = ("saturation",)


@dataclass(frozen=True)
class RankConfig:
    """One configuration for every investigation, chosen by leave-one-out on published fault
    injections and fault-free windows (BENCHMARKS.md, "Root cause on real fault injections"):
    a pod's own saturation, the share of error lines (a rise beyond sampling noise), and the
    per-operation behaviour (analysis.behaviour); victim factor 0.5. The stating thresholds
    are chosen with a wrong or fault-free statement weighted three times a right one. Kinds
    that compare a service with all others (log-volume drop, template-mix shift) move with
    the request mix and were not chosen.

    The slow links a service is an end of (`trace_link`, analysis.traces.link_table) are in
    too, though leave-one-out could not choose them: the published day holds no network
    delay. They are silent there (largest value 0.05 against the gate 0.2, so ranks and
    statements are unchanged), and they find a delay injected into the same real traces
    (BENCHMARKS.md), which self time cannot: a delayed pod's callers wait on the same
    wire."""

    kinds: tuple[str, ...] = ("metric", "error_share", "behaviour", "trace_link")
    gates: dict[str, float] = field(default_factory=lambda: {k: g for k, (_, g) in
                                                             KINDS.items()})
    victim_factor: float = 0.5
    compress: tuple[str, ...] = ()  # kinds scaled on log1p (heavy-tailed statistics)
    min_score: float = 2.0
    min_margin: float = 1.0


def evidence_table(
    metrics: pd.DataFrame | None = None,
    logs: pd.DataFrame | None = None,
    named: pd.DataFrame | None = None,
    traces: pd.DataFrame | None = None,
    behaviour: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Service x kind statistics (>= 0) from the evidence tables; a kind whose input is
    missing is absent (NaN), not 0: "not measured" is not "normal".

    The metric kind is a pod's own-state signal (METRIC_ROLES) measured as `over_peak`: how
    far the incident went past the largest deviation the baseline itself showed. A robust z
    alone over-rates heavy-tailed series that spike in normal minutes too."""
    cols: dict[str, pd.Series] = {}
    if metrics is not None and not metrics.empty:
        m = metrics[metrics["role"].isin(METRIC_ROLES)]
        cols["metric"] = m.groupby("service")["over_peak"].max().clip(lower=0.0)
    if logs is not None and not logs.empty:
        lg = logs.set_index("service")
        cols["error_share"] = lg["error_share_delta"].clip(lower=0.0)
        cols["template_down"] = lg["template_down_sig"]
        cols["template_up"] = lg["template_up_sig"]
        cols["pattern_shift"] = lg["pattern_shift"]
        n0, n1 = lg["lines_baseline"].sum(), lg["lines_incident"].sum()
        if n0 > 0 and n1 > 0:
            ratio = ((lg["lines_incident"] + 0.5) / n1) / ((lg["lines_baseline"] + 0.5) / n0)
            drop = (-np.log(ratio)).clip(lower=0.0)
            cols["volume_down"] = drop.where(lg["volume_down_sig"] >= 3.0, 0.0)
    if named is not None and not named.empty:
        cols["named"] = named.set_index("service")["named_sig"]
    if traces is not None and not traces.empty:
        tr = traces.set_index("service")
        cols["trace_slow"] = tr["self_ms_sig"]
        cols["trace_calls_down"] = tr["calls_down_sig"]
        cols["trace_errors"] = tr["errors_sig"]
        if "link_slow" in tr:
            cols["trace_link"] = tr["link_slow"]
    if behaviour is not None and not behaviour.empty:
        cols["behaviour"] = behaviour.set_index("service")["behaviour"].astype(float)
    if not cols:
        return pd.DataFrame(columns=list(KINDS))
    out = pd.DataFrame(cols).astype(float)
    out.index = out.index.astype(str)
    out.index.name = "service"
    if "named" in out:  # a service can only be named by others when it has no lines itself
        out["named"] = out["named"].fillna(0.0)
    return out


def _scaled(table: pd.DataFrame, cfg: RankConfig) -> pd.DataFrame:
    """Each configured kind past its gate, divided by its strongest service (0 .. 1)."""
    parts = {}
    for k in cfg.kinds:
        if k not in table:
            continue
        v = table[k].fillna(0.0)
        v = v.where(v >= cfg.gates.get(k, KINDS[k][1]), 0.0)
        if k in cfg.compress:
            v = np.log1p(v)
        top = float(v.max()) if len(v) else 0.0
        parts[k] = v / top if top > 0 else v * 0.0
    return pd.DataFrame(parts, index=table.index)


def _descendants(calls: dict[str, list[str]], service: str) -> set[str]:
    seen: set[str] = set()
    stack = list(calls.get(service, []))
    while stack:
        s = stack.pop()
        if s not in seen and s != service:
            seen.add(s)
            stack.extend(calls.get(s, []))
    return seen


def rank_services(
    table: pd.DataFrame,
    cfg: RankConfig | None = None,
    *,
    calls: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Services with a positive score, best first: score, rank (ties share it), one column
    per kind (its scaled contribution), and `victim_of` (anomalous callees at least as bad)."""
    cfg = cfg or RankConfig()
    cols = ["service", "score", "rank", "victim_of", *cfg.kinds]
    if table.empty:
        return pd.DataFrame(columns=cols)
    parts = _scaled(table, cfg)
    score = parts.sum(axis=1) if len(parts.columns) else pd.Series(0.0, index=table.index)
    victim: dict[str, list[str]] = {}
    for s, x in score.items():
        if x <= 0 or not calls:
            continue
        worse = sorted(c for c in _descendants(calls, str(s)) if score.get(c, 0.0) >= x)
        if worse:
            victim[str(s)] = worse
    adj = score.copy()
    for s in victim:
        adj[s] = score[s] * cfg.victim_factor
    out = parts.assign(score=adj.round(6)).reset_index()
    out = out.rename(columns={out.columns[0]: "service"})
    out = out[out["score"] > 0]
    out["victim_of"] = [victim.get(s, []) for s in out["service"]]
    out["rank"] = out["score"].rank(method="min", ascending=False).astype(int)
    out = out.sort_values(["rank", "service"], ignore_index=True)  # order within a tie only
    for k in cfg.kinds:
        if k not in out:
            out[k] = np.nan  # kind not measured in this investigation
    return out[cols]


def root_cause_of(ranked: pd.DataFrame, cfg: RankConfig | None = None) -> dict[str, Any]:
    """The stated root cause (or None), the services tied at the top, and why; with a stated
    cause, its `lead` over the next service."""
    cfg = cfg or RankConfig()
    if ranked.empty:
        return {"root_cause": None, "ties": [], "reason": "no service deviates past the gates"}
    top = ranked[ranked["rank"] == 1]
    ties = sorted(top["service"].astype(str))
    best = float(top["score"].iloc[0])
    nxt = ranked.loc[ranked["rank"] > 1, "score"]
    margin = best - (float(nxt.iloc[0]) if len(nxt) else 0.0)
    if len(ties) > 1:
        return {"root_cause": None, "ties": ties, "reason": f"{len(ties)} services tie at the top"}
    if best < cfg.min_score:
        return {"root_cause": None, "ties": ties,
                "reason": f"top score {best:.2f} below {cfg.min_score:.2f}"}
    if margin < cfg.min_margin:
        return {"root_cause": None, "ties": ties,
                "reason": f"lead {margin:.2f} over the next suspect below {cfg.min_margin:.2f}"}
    return {"root_cause": ties[0], "ties": ties, "lead": margin,
            "reason": f"score {best:.2f}, lead {margin:.2f} over the next suspect"}
