"""In-process ablation benchmark of the root-cause ranking on the Nezha TrainTicket layout.

Usage: .venv/bin/python benchmarks/nezha_rank.py [--data /tmp/nezha/rca_data/2023-01-29]
       [--normal /tmp/nezha/construct_data/2023-01-29] [--lookback 2min] [--fresh]

For every fault of the fault list, only `inject_time` (t0) places the window: baseline
[t0-20min, t0-lookback), incident [t0-lookback, t0+4min] (the alert stands in for t0 and the
fault may have started shortly before it); the raw files of that span are read by
benchmarks/nezha_load.py into the analysis contract frames, and the fault-free `--normal`
folder is pooled into the log and span baselines as history. Operation behaviour
(analysis.behaviour) is measured from t0 (the alert) to the window's end, as the product does.
The analysis functions (analysis.evidence, analysis.traces, analysis.behaviour,
analysis.rootcause) run directly, no notebooks: this is
for tuning; benchmarks/nezha.py (issue 13, part A) measures the product end to end.
The answer (inject_pod) is read only to score. Ties are scored pessimistically: the true
service counts as ranked behind every service tied with it (the product reports ties as ties).

Fault-free windows: (a) windows at times with no injection within 25 minutes before and 10
after (metrics only: the export holds logs and spans only around faults), and (b) windows in
the `--normal` folder (logs, spans and metrics; no history then, the folder IS the data).
There the ranking must state no root cause.

Tuning is leave-one-out: for each fault, the configuration (kinds used, victim factor) is
chosen on the other faults and scores the held-out one; the stating thresholds are chosen the
same way over faults plus fault-free windows. Both the fitted (all cases) and the LOO figures
are printed; the last line is `overall cases=N AC@1=.. AC@3=.. AC@5=.. Avg@5=..` (LOO).
Per-case evidence tables are cached under /tmp/nezha_rank_cache (never in the repository).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import pickle
import platform
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from nezha_load import CACHE, load_window, quiet_times, service_of, signal_meta  # noqa: E402

from incident_lib.analysis.behaviour import behaviour_evidence  # noqa: E402
from incident_lib.analysis.evidence import (  # noqa: E402
    log_evidence,
    metric_excursions,
    named_in_errors,
)
from incident_lib.analysis.rootcause import (  # noqa: E402
    KINDS,
    RankConfig,
    evidence_table,
    rank_services,
    root_cause_of,
)
from incident_lib.analysis.templates import mine_templates  # noqa: E402
from incident_lib.analysis.traces import call_graph, trace_evidence  # noqa: E402

BEFORE = pd.Timedelta("20min")
AFTER = pd.Timedelta("4min")
CANDIDATE_KINDS = tuple(KINDS)
GATE_GRID = {"error_share": (0.0, 0.01, 0.03), "metric": (1.5, 3.0, 10.0)}
SCORE_GRID = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
MARGIN_GRID = (0.0, 0.25, 0.5, 1.0, 1.5)


def _templates(logs: pd.DataFrame, history: pd.DataFrame | None
               ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Mine templates over the window and the history together (same ids on both sides), each
    service apart, as the product does."""
    n = len(logs)
    msgs = logs["message"].astype(str).tolist()
    groups = logs["service"].astype(str).tolist()
    if history is not None:
        msgs += history["message"].astype(str).tolist()
        groups += history["service"].astype(str).tolist()
    ids, texts = mine_templates(msgs, groups=groups) if msgs else ([], {})  # per service
    logs = logs.assign(template_id=ids[:n], template=[texts[i] for i in ids[:n]])
    if history is not None:
        history = history.assign(template_id=ids[n:], template=[texts[i] for i in ids[n:]])
    return logs, history


def features(root: Path, baseline: tuple[pd.Timestamp, pd.Timestamp],
             incident: tuple[pd.Timestamp, pd.Timestamp],
             history: tuple[pd.DataFrame, pd.DataFrame] | None, fresh: bool = False
             ) -> dict[str, object]:
    """Evidence table and call graph of one window (cached on disk)."""
    key = hashlib.sha1(f"v12|{root}|{baseline}|{incident}|{history is not None}".encode()
                       ).hexdigest()[:16]
    path = CACHE / f"feat_{key}.pkl"
    if path.exists() and not fresh:
        return pickle.loads(path.read_bytes())
    metrics, logs, spans = load_window(root, baseline[0], incident[1])
    hl, hs = history if history is not None else (None, None)
    logs, hl = _templates(logs, hl)
    services = set(logs["service"]) | set(spans["service"])
    for df in metrics.values():
        services |= set(df["service"])
    me = metric_excursions(metrics, signal_meta(), baseline, incident)
    # the fault-free reference replaces the period before (which holds earlier faults) for
    # the events it covers, as the product does with a declared reference period
    ev_base = (baseline[0], baseline[0]) if history is not None else baseline
    le = log_evidence(logs, ev_base, incident, history=hl)
    ne = named_in_errors(logs, services, ev_base, incident, history=hl)
    te = trace_evidence(spans, ev_base, incident, history=hs)
    # behaviour while the alert fires (the fault is on then), against the normal period
    since = (max(incident[0], incident[1] - AFTER), incident[1])
    be = behaviour_evidence(spans, logs, ev_base, since, history_spans=hs, history_logs=hl)
    calls = call_graph(pd.concat([spans, hs]) if hs is not None else spans)
    out = {"table": evidence_table(me, le, ne, te, be), "calls": calls,
           "has_logs": not logs.empty, "has_spans": not spans.empty}
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def rank_of(feat: dict[str, object], cfg: RankConfig, truth: str | None) -> tuple[int, dict]:
    """(rank of the true service, 99 when absent; root-cause decision)."""
    ranked = rank_services(feat["table"], cfg, calls=feat["calls"])  # type: ignore[arg-type]
    decision = root_cause_of(ranked, cfg)
    if truth is None:
        return 99, decision
    hit = ranked[ranked["service"] == truth]
    if not len(hit):
        return 99, decision
    # scored pessimistically: the true service behind every service tied with it
    return int((ranked["score"] >= hit["score"].iloc[0]).sum()), decision


def acc(ranks: list[int]) -> dict[str, float]:
    """AC@1, AC@3, AC@5 and Avg@5 of a list of ranks."""
    r = np.asarray(ranks)
    if len(r) == 0:
        return {"AC@1": 0.0, "AC@3": 0.0, "AC@5": 0.0, "Avg@5": 0.0}
    return {"AC@1": float(np.mean(r <= 1)), "AC@3": float(np.mean(r <= 3)),
            "AC@5": float(np.mean(r <= 5)),
            "Avg@5": float(np.mean([np.mean(r <= k) for k in range(1, 6)]))}


def configs() -> list[RankConfig]:
    """The grid searched: kind subsets (1..4 kinds), two gates, victim factor."""
    out = []
    base = RankConfig()
    for n in range(1, 5):
        for kinds in itertools.combinations(CANDIDATE_KINDS, n):
            for es, mg in itertools.product(GATE_GRID["error_share"], GATE_GRID["metric"]):
                gates = {**base.gates, "error_share": es, "metric": mg}
                for vf, comp in itertools.product((1.0, 0.5), ((), ("metric",))):
                    if comp and "metric" not in kinds:
                        continue
                    out.append(replace(base, kinds=kinds, gates=gates, victim_factor=vf,
                                       compress=comp))
    return out


class Fast:
    """One window's evidence as arrays, for scoring thousands of configurations quickly; the
    same arithmetic as rootcause.rank_services (checked against it in main)."""

    def __init__(self, feat: dict, truth: str | None) -> None:
        table: pd.DataFrame = feat["table"]  # type: ignore[assignment]
        self.services = [str(s) for s in table.index]
        self.m = {k: table[k].fillna(0.0).to_numpy(float) for k in table.columns}
        self.n = len(self.services)
        self.truth = self.services.index(truth) if truth in self.services else -1
        idx = {s: i for i, s in enumerate(self.services)}
        calls: dict[str, list[str]] = feat["calls"]  # type: ignore[assignment]
        self.desc = np.zeros((self.n, self.n), bool)
        for s, i in idx.items():
            seen, stack = set(), list(calls.get(s, []))
            while stack:
                c = stack.pop()
                if c not in seen and c != s:
                    seen.add(c)
                    stack.extend(calls.get(c, []))
            for c in seen & set(idx):
                self.desc[i, idx[c]] = True

    def scores(self, cfg: RankConfig) -> np.ndarray:
        sc = np.zeros(self.n)
        for k in cfg.kinds:
            if k in self.m:
                v = np.where(self.m[k] >= cfg.gates[k], self.m[k], 0.0)
                if k in cfg.compress:
                    v = np.log1p(v)
                top = v.max() if self.n else 0.0
                if top > 0:
                    sc += v / top
        if cfg.victim_factor != 1.0 and self.n:
            worse = (self.desc & (sc[None, :] >= sc[:, None])).any(axis=1) & (sc > 0)
            sc = np.where(worse, sc * cfg.victim_factor, sc)
        return np.round(sc, 6)

    def stated(self, cfg: RankConfig) -> str | None:
        """rootcause.root_cause_of on the fast path: a unique top past both thresholds."""
        sc = self.scores(cfg)
        if self.n == 0 or sc.max() <= 0:
            return None
        top = sc.max()
        if (sc == top).sum() > 1 or top < cfg.min_score:
            return None
        rest = sc[sc < top]
        nxt = rest.max() if len(rest) and rest.max() > 0 else 0.0
        return self.services[int(np.argmax(sc))] if top - nxt >= cfg.min_margin else None

    def rank(self, cfg: RankConfig) -> int:
        sc = self.scores(cfg)
        if self.truth < 0 or sc[self.truth] <= 0:
            return 99
        return int((sc >= sc[self.truth]).sum())  # a tie counts against us (pessimistic)


def rank_matrix(fast: list[Fast], grid: list[RankConfig]) -> np.ndarray:
    """Rank of the true service per configuration (rows) and case (columns)."""
    return np.array([[f.rank(cfg) for f in fast] for cfg in grid])


def best_index(r: np.ndarray, grid: list[RankConfig]) -> int:
    """Row with the highest Avg@5, then AC@1, then fewest kinds; grid order breaks the rest."""
    avg = np.mean([(r <= k).mean(axis=1) for k in range(1, 6)], axis=0)
    ac1 = (r <= 1).mean(axis=1)
    nk = np.array([len(c.kinds) for c in grid])
    return int(np.lexsort((-np.arange(len(grid)), -nk, ac1, avg))[-1])


def stating(cfg: RankConfig, feats: list[Fast], truths: list[str | None]) -> dict[str, int]:
    """Counts: stated right, stated wrong (fault), stated on fault-free, faults, fault-free."""
    c = {"right": 0, "wrong": 0, "free_stated": 0, "faults": 0, "free": 0}
    for f, t in zip(feats, truths, strict=True):
        rc = f.stated(cfg)
        if t is None:
            c["free"] += 1
            c["free_stated"] += rc is not None
        else:
            c["faults"] += 1
            c["right"] += rc == t
            c["wrong"] += rc is not None and rc != t
    return c


def best_thresholds(cfg: RankConfig, feats: list[Fast], truths: list[str | None]
                    ) -> RankConfig:
    """Stating thresholds: most right statements with wrong + fault-free statements weighted
    3x (a wrong culprit stated as fact is the worst output); strictest wins ties."""
    best, key = cfg, None
    for ms, mm in itertools.product(SCORE_GRID, MARGIN_GRID):
        c = replace(cfg, min_score=ms, min_margin=mm)
        s = stating(c, feats, truths)
        k = (s["right"] - 3 * (s["wrong"] + s["free_stated"]), ms, mm)
        if key is None or k > key:
            best, key = c, k
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/nezha/rca_data/2023-01-29"))
    ap.add_argument("--normal", type=Path, default=Path("/tmp/nezha/construct_data/2023-01-29"))
    ap.add_argument("--lookback", default="7min")  # alert_for 5m + 2m, as the product
    ap.add_argument("--fresh", action="store_true", help="ignore the feature cache")
    args = ap.parse_args()
    t_start = time.perf_counter()
    lookback = pd.Timedelta(args.lookback)
    fl = json.loads(next(args.data.glob("*fault_list.json")).read_text())
    faults = [f for hour in fl.values() for f in hour]
    day = pd.Timestamp(faults[0]["inject_time"], tz="UTC").normalize()
    _, hl, hs = load_window(args.normal, day, day + pd.Timedelta(days=1))
    history = (hl, hs)
    feats, truths, types, secs = [], [], [], []
    for f in faults:
        t0 = pd.Timestamp(f["inject_time"], tz="UTC")
        c0 = time.perf_counter()
        feats.append(features(args.data, (t0 - BEFORE, t0 - lookback),
                              (t0 - lookback, t0 + AFTER), history, args.fresh))
        secs.append(time.perf_counter() - c0)
        truths.append(service_of(f["inject_pod"]))
        types.append(f["inject_type"])
    free_feats: list[dict] = []
    for t0 in quiet_times([pd.Timestamp(f["inject_time"], tz="UTC") for f in faults]):
        free_feats.append(features(args.data, (t0 - BEFORE, t0 - lookback),
                                   (t0 - lookback, t0 + AFTER), None, args.fresh))
    if not hl.empty:  # windows inside the fault-free folder: its first part is the baseline
        lo, hi = hl["time"].min(), hl["time"].max()
        cut = lo + (hi - lo) * 0.4
        for a, b in ((cut, cut + (hi - cut) / 2), (cut + (hi - cut) / 2, hi)):
            free_feats.append(features(args.normal, (a - BEFORE, a), (a, b), None, args.fresh))
    grid = configs()
    fast = [Fast(f, t) for f, t in zip(feats, truths, strict=True)]
    free_fast = [Fast(f, None) for f in free_feats]
    rm = rank_matrix(fast, grid)
    fitted = grid[best_index(rm, grid)]
    fitted = best_thresholds(fitted, fast + free_fast, truths + [None] * len(free_feats))
    fit_ranks = [rank_of(f, fitted, t)[0] for f, t in zip(feats, truths, strict=True)]
    assert fit_ranks == [f.rank(fitted) for f in fast], "fast path differs from rank_services"
    loo_ranks, loo_stated = [], {"right": 0, "wrong": 0}
    for i in range(len(feats)):
        tr_f = fast[:i] + fast[i + 1:]
        tr_t = truths[:i] + truths[i + 1:]
        cfg = grid[best_index(np.delete(rm, i, axis=1), grid)]
        cfg = best_thresholds(cfg, tr_f + free_fast, tr_t + [None] * len(free_feats))
        assert fast[i].stated(cfg) == rank_of(feats[i], cfg, truths[i])[1]["root_cause"]
        r, d = rank_of(feats[i], cfg, truths[i])
        loo_ranks.append(r)
        if d["root_cause"] is not None:
            loo_stated["right" if d["root_cause"] == truths[i] else "wrong"] += 1
    free_loo = 0
    all_truths = truths + [None] * len(free_feats)
    for j in range(len(free_feats)):
        others = free_fast[:j] + free_fast[j + 1:]
        cfg = best_thresholds(fitted, fast + others, truths + [None] * len(others))
        free_loo += free_fast[j].stated(cfg) is not None
    fit_stating = stating(fitted, fast + free_fast, all_truths)
    print(f"# Nezha TrainTicket root-cause ranking ({args.data.name}), lookback {lookback}, "
          f"{platform.node()} {platform.processor() or platform.machine()}, "
          f"{pd.Timestamp.now('UTC'):%Y-%m-%d %H:%M} UTC")
    print(f"fitted config: kinds={','.join(fitted.kinds)} gates(metric={fitted.gates['metric']}"
          f", error_share={fitted.gates['error_share']}) victim_factor={fitted.victim_factor} "
          f"compress={fitted.compress} min_score={fitted.min_score} min_margin={fitted.min_margin}")
    print("| fault type | cases | fitted AC@1 | AC@3 | AC@5 | Avg@5 | LOO AC@1 | AC@3 | AC@5 "
          "| Avg@5 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    by: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(types):
        by[t].append(i)
    for t in sorted(by) + ["overall"]:
        idx = by[t] if t != "overall" else list(range(len(types)))
        a = acc([fit_ranks[i] for i in idx])
        b = acc([loo_ranks[i] for i in idx])
        print(f"| {t} | {len(idx)} | {a['AC@1']:.2f} | {a['AC@3']:.2f} | {a['AC@5']:.2f} | "
              f"{a['Avg@5']:.2f} | {b['AC@1']:.2f} | {b['AC@3']:.2f} | {b['AC@5']:.2f} | "
              f"{b['Avg@5']:.2f} |")
    print(f"ranks (fitted): {fit_ranks}")
    print(f"ranks (LOO):    {loo_ranks}")
    print(f"root cause stated (fitted): {fit_stating['right']} right, {fit_stating['wrong']} "
          f"wrong of {fit_stating['faults']} faults; {fit_stating['free_stated']} of "
          f"{fit_stating['free']} fault-free windows name one")
    print(f"root cause stated (LOO): {loo_stated['right']} right, {loo_stated['wrong']} wrong "
          f"of {len(feats)} faults; {free_loo} of {len(free_feats)} fault-free windows name one")
    print(f"seconds per case (features, cached after the first run): median "
          f"{float(np.median(secs)):.2f}; total {time.perf_counter() - t_start:.1f} s")
    for name, c in (("product default (RankConfig())", RankConfig()),
                    ("every kind, default gates", RankConfig(kinds=CANDIDATE_KINDS))):
        a = acc([f.rank(c) for f in fast])
        print(f"{name}: AC@1={a['AC@1']:.2f} AC@3={a['AC@3']:.2f} AC@5={a['AC@5']:.2f} "
              f"Avg@5={a['Avg@5']:.2f}; stated {stating(c, fast + free_fast, all_truths)}")
    o = acc(loo_ranks)
    print(f"overall cases={len(feats)} AC@1={o['AC@1']:.2f} AC@3={o['AC@3']:.2f} "
          f"AC@5={o['AC@5']:.2f} Avg@5={o['Avg@5']:.2f}")


if __name__ == "__main__":
    main()
