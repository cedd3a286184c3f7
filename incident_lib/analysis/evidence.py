"""Per-service evidence of an excursion: metrics (per pod), logs (templates, errors, names).

Every statistic here is a *significance* (-log10 of a p-value, or a robust z for metrics) of a
service's OWN change between a baseline (the normal period before the window, plus a
fault-free history when one is given) and the incident window, never a window-wide median, so
a three-minute fault is not averaged away. Missing input gives no row (never a zero that reads
as "measured and normal").

- Metrics: per pod and signal, robust z (median / 1.4826 MAD of the baseline) of the mean of
  every short run of incident points, in the signal's direction of badness; the service takes
  its worst pod (MicroRCA, Wu et al. NOMS 2020, scores pods on their own deviation the same way).
- Logs: templates per service counted in both periods; counts are compared with the exact
  conditional Poisson test (as spikes.compare_counts) after scaling by the change of ALL logs,
  so a global change of traffic is not a surge. Surging, new, dropping and vanishing templates
  all count (Nezha, Yu et al. FSE 2023: a fault changes the event pattern of the culprit, often
  by removing events; "wrong return value" faults add no error line). Error lines (level
  ERROR/FATAL, or an exception/stack trace) are tested on their own per service.
- Names: a service named in OTHER services' error lines, matched on the raw messages against
  the known service list (the template miner masks names away), tested the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .onset import ABS_FLOOR

__all__ = ["metric_excursions", "log_evidence", "named_in_errors", "share_change", "is_error_line",
           "poisson_change", "ERROR_PATTERN"]

ERROR_PATTERN = re.compile(r"(?:^|[\s.:$])(?:[A-Za-z]+Exception|[A-Za-z]+Error)\b|^\s+at\s|"
                           r"Caused by:|Traceback \(most recent call last\)")
# words every match of ERROR_PATTERN holds (or a line starting with whitespace): tested as
# plain substrings before the pattern; change them together
ERROR_WORDS = ("Exception", "Error", "Caused by:", "Traceback")
ERROR_LEVELS = {"error", "fatal", "critical", "severe", "err", "crit", "alert", "emerg"}
SHARE_SIG = 3.0  # -log10 p a rise of the error share needs
_MAX_SIG = 50.0  # -log10 p is capped: beyond this all are "certain"


def _sig(p: np.ndarray | float) -> np.ndarray:
    """-log10 p, capped."""
    return np.minimum(-np.log10(np.maximum(np.asarray(p, dtype=float), 1e-300)), _MAX_SIG)


def poisson_change(k_inc: np.ndarray, k_base: np.ndarray, share: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Significance of an increase and of a decrease of k_inc vs k_base.

    Exact conditional test of two Poisson rates: given n = k_inc + k_base, k_inc ~
    Binomial(n, share) when nothing changed; share = the incident period's part of the exposure
    (duration, or total volume). Returns (-log10 p_up, -log10 p_down).
    """
    k1 = np.asarray(k_inc, dtype=int)
    n = k1 + np.asarray(k_base, dtype=int)
    up = stats.binom.sf(k1 - 1, n, share)
    down = stats.binom.cdf(k1, n, share)
    return _sig(up), _sig(down)


def metric_excursions(
    frames: dict[str, pd.DataFrame],
    meta: dict[str, dict[str, str]],
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    *,
    history: dict[str, pd.DataFrame] | None = None,
    run: int = 2,
) -> pd.DataFrame:
    """Per service, pod and signal: robust z of the worst run of incident points, its onset.

    frames: signal -> DataFrame(time, service, value[, pod]); meta: signal -> {unit, direction,
    role}; history: the same shape from a fault-free period, pooled into the baseline.
    The statistic is the mean of `run` consecutive incident points (a single point when the
    window holds fewer) minus the baseline median, over the baseline's robust scale (floored at
    5% of the median and at a third of the unit's smallest meaningful change, onset.ABS_FLOOR,
    so a flat or idle series does not make every wobble huge), signed so that
    positive is the direction of badness ('up', 'down'; anything else: both). `over_peak` is
    the same deviation over the baseline's own largest deviation in that direction: above 1,
    the incident went further than anything seen in the baseline (heavy-tailed series such as
    sparse percentiles spike in normal times too; z alone over-rates them).
    """
    cols = ["service", "pod", "signal", "role", "unit", "baseline", "incident", "z",
            "over_peak", "onset"]
    rows: list[dict[str, object]] = []
    b0, b1 = baseline
    i0, i1 = incident
    for name, df in frames.items():
        if df is None or df.empty:
            continue
        info = meta.get(name, {})
        direction = info.get("direction", "up")
        unit_floor = ABS_FLOOR.get(info.get("unit", ""), 0.0) / 3.0
        pod_col = "pod" if "pod" in df else "service"
        hist = (history or {}).get(name)
        hist_by = ({k: g["value"].to_numpy(float) for k, g in
                    hist.groupby(["service", pod_col], sort=False)}
                   if hist is not None and not hist.empty else {})
        for (svc, pod), g in df.groupby(["service", pod_col], sort=True):
            g = g.sort_values("time")
            t = g["time"]
            base = g.loc[(t >= b0) & (t < b1), "value"].to_numpy(float)
            if (svc, pod) in hist_by:
                base = np.concatenate([base, hist_by[(svc, pod)]])
            base = base[np.isfinite(base)]
            inc = g[(t >= i0) & (t <= i1)]
            vals = inc["value"].to_numpy(float)
            ok = np.isfinite(vals)
            if len(base) < 5 or ok.sum() == 0:
                continue
            vals, times = vals[ok], inc["time"].to_numpy()[ok]
            med = float(np.median(base))
            mad = 1.4826 * float(np.median(np.abs(base - med)))
            scale = max(mad, 0.05 * abs(med), unit_floor, 1e-9)
            k = min(run, len(vals))
            runs = np.convolve(vals, np.ones(k) / k, mode="valid")
            bruns = np.convolve(base, np.ones(k) / k, mode="valid") if len(base) >= k else base
            sign = -1.0 if direction == "down" else 1.0
            dev = sign * (runs - med)
            bdev = sign * (bruns - med)
            if direction not in ("up", "down"):
                dev, bdev = np.abs(dev), np.abs(bdev)
            j = int(np.argmax(dev))
            peak = max(float(bdev.max()), scale)
            rows.append({"service": str(svc), "pod": str(pod), "signal": name,
                         "role": info.get("role", "other"), "unit": info.get("unit", ""),
                         "baseline": med, "incident": float(runs[j]),
                         "z": float(dev[j] / scale), "over_peak": float(dev[j] / peak),
                         "onset": pd.Timestamp(times[j])})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("z", ascending=False, ignore_index=True)


def _error_text(text: str) -> bool:
    # most lines hold none of ERROR_WORDS, and the pattern is slow on long lines (10x)
    if not (text[:1].isspace() or any(w in text for w in ERROR_WORDS)):
        return False
    return ERROR_PATTERN.search(text) is not None


def is_error_line(level: pd.Series, message: pd.Series) -> np.ndarray:
    """Error lines: an error level, or an exception / stack-trace line (level may be None)."""
    lv = level.astype("string").str.lower().isin(ERROR_LEVELS).fillna(False).to_numpy(bool)
    ex = np.fromiter((_error_text(m) for m in message.astype(str)), bool, len(message))
    return lv | ex


def log_evidence(
    logs: pd.DataFrame,
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    *,
    history: pd.DataFrame | None = None,
    min_lines: int = 3,
) -> pd.DataFrame:
    """Per service: strongest template change (up: new/surging, down: dropping/vanishing) and
    error-line change, as significances, with the template that shows it.

    logs: time, service, level, message, template_id, template. history: fault-free lines of
    the same shape, pooled into the baseline. Counts are scaled by the change of all lines, so
    only a service's own change counts. A change needs at least `min_lines` lines on its
    larger side (one stray line is not a pattern).
    """
    cols = ["service", "template_up", "template_up_sig", "template_down",
            "template_down_sig", "errors_baseline", "errors_incident", "errors_sig",
            "lines_baseline", "lines_incident", "volume_down_sig", "pattern_shift",
            "error_share_delta"]
    if logs.empty:
        return pd.DataFrame(columns=cols)
    base = logs[(logs["time"] >= baseline[0]) & (logs["time"] < baseline[1])]
    if history is not None and not history.empty:
        base = pd.concat([base, history], ignore_index=True)
    inc = logs[(logs["time"] >= incident[0]) & (logs["time"] <= incident[1])]
    if base.empty or inc.empty:
        return pd.DataFrame(columns=cols)
    share = len(inc) / (len(inc) + len(base))  # exposure: all lines, not minutes
    kb = base.groupby(["service", "template_id"]).size()
    ki = inc.groupby(["service", "template_id"]).size()
    keys = kb.index.union(ki.index)
    k0 = kb.reindex(keys, fill_value=0).to_numpy()
    k1 = ki.reindex(keys, fill_value=0).to_numpy()
    up, down = poisson_change(k1, k0, share)
    up[k1 < min_lines] = 0.0
    down[k0 < min_lines] = 0.0
    t = pd.DataFrame({"service": keys.get_level_values(0), "template_id":
                      keys.get_level_values(1), "up": up, "down": down})
    names = pd.concat([base, inc])[["template_id", "template"]].drop_duplicates("template_id")
    t = t.merge(names, on="template_id", how="left")
    eb = base.assign(err=is_error_line(base["level"], base["message"])).groupby("service")["err"]
    ei = inc.assign(err=is_error_line(inc["level"], inc["message"])).groupby("service")["err"]
    lb, li = base.groupby("service").size(), inc.groupby("service").size()
    rows = []
    rng = np.random.default_rng(0)
    for svc in sorted(set(t["service"])):
        g = t[t["service"] == svc]
        c0 = kb.get(svc, pd.Series(dtype=int))
        c1 = ki.get(svc, pd.Series(dtype=int))
        shift = pattern_shift(c0, c1, rng)
        u, d = g.loc[g["up"].idxmax()], g.loc[g["down"].idxmax()]
        e0 = int(eb.sum().get(svc, 0))
        e1 = int(ei.sum().get(svc, 0))
        e_up, _ = poisson_change(np.array([e1]), np.array([e0]), share)
        n0, n1 = int(lb.get(svc, 0)), int(li.get(svc, 0))
        _, v_down = poisson_change(np.array([n1]), np.array([n0]), share)
        rows.append({"service": svc, "template_up": u["template"],
                     "template_up_sig": float(u["up"]), "template_down": d["template"],
                     "template_down_sig": float(d["down"]), "errors_baseline": e0,
                     "errors_incident": e1,
                     "errors_sig": float(e_up[0]) if e1 >= min_lines else 0.0,
                     "lines_baseline": n0, "lines_incident": n1,
                     "volume_down_sig": float(v_down[0]) if n0 >= min_lines else 0.0,
                     "pattern_shift": shift,
                     "error_share_delta": _share_rise(e0, n0, e1, n1, min_lines)})
    return pd.DataFrame(rows, columns=cols)


def share_change(k1: Any, n1: Any, k0: Any, n0: Any) -> tuple[np.ndarray, np.ndarray]:
    """(-log10 p that the share rose, that it fell): k1 of n1 against the baseline share
    k0 of n0, smoothed to (k0 + 0.5) / (n0 + 1) (binomial tails, capped)."""
    k1, n1 = np.asarray(k1, dtype=float), np.asarray(n1, dtype=float)
    p0 = (np.asarray(k0, dtype=float) + 0.5) / (np.asarray(n0, dtype=float) + 1.0)
    return _sig(stats.binom.sf(k1 - 1, n1, p0)), _sig(stats.binom.cdf(k1, n1, p0))


def share_var(a: Any, n: Any) -> Any:
    """Sampling variance of a share a measured on n trials, with a 0.25/n continuity term so
    that a share of 0 or 1 is not taken as certain (the effects of behaviour and slow links
    are a share change minus two standard errors)."""
    return (a * (1 - a) + 0.25 / n) / n


def _share_rise(e0: int, n0: int, e1: int, n1: int, min_lines: int) -> float:
    """How much the share of error lines rose (e1/n1 - e0/n0), counted only when the rise is
    beyond sampling noise (share_change >= SHARE_SIG). A service that logs errors now and
    then moves its share by chance."""
    if not n0 or not n1 or e1 < min_lines:
        return 0.0
    up, _ = share_change(e1, n1, e0, n0)
    return float(e1 / n1 - e0 / n0) if float(up) >= SHARE_SIG else 0.0


def pattern_shift(base: pd.Series, inc: pd.Series, rng: np.random.Generator,
                  draws: int = 50) -> float:
    """How far a service's template mix moved, beyond sampling noise (0 when within it).

    Total variation distance between the template shares of the two periods, minus the 95th
    percentile of the same distance when the pooled lines are split at random into two
    periods of the same sizes (a permutation null). An effect size, so a busy service does not
    win by volume alone (Nezha compares event patterns of a service, not raw counts).
    """
    keys = base.index.union(inc.index)
    a = base.reindex(keys, fill_value=0).to_numpy(int)
    b = inc.reindex(keys, fill_value=0).to_numpy(int)
    n0, n1 = int(a.sum()), int(b.sum())
    if n0 == 0 or n1 == 0:
        return 0.0
    tv = 0.5 * float(np.abs(a / n0 - b / n1).sum())
    pooled = a + b
    null = np.empty(draws)
    for i in range(draws):
        x = rng.multivariate_hypergeometric(pooled, n1)
        null[i] = 0.5 * float(np.abs((pooled - x) / n0 - x / n1).sum())
    return max(tv - float(np.quantile(null, 0.95)), 0.0)


def _names_in(text: str, pattern: re.Pattern[str]) -> set[str]:
    return set(pattern.findall(text))


def named_in_errors(
    logs: pd.DataFrame,
    services: Iterable[str],
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    *,
    history: pd.DataFrame | None = None,
    min_lines: int = 3,
) -> pd.DataFrame:
    """Per service: how often OTHER services' error lines name it (raw text, whole words),
    baseline vs incident, and the significance of the increase (exposure = all lines of each
    period, so a general rise of traffic is not a rise of blame).
    """
    cols = ["service", "named_baseline", "named_incident", "named_sig", "named_by"]
    known = sorted({str(s) for s in services if str(s)}, key=len, reverse=True)
    if logs.empty or not known:
        return pd.DataFrame(columns=cols)
    pat = re.compile(r"(?<![\w-])(" + "|".join(re.escape(s) for s in known) + r")(?![\w-])")
    err = logs[is_error_line(logs["level"], logs["message"])]
    hist = None
    if history is not None and not history.empty:
        hist = history[is_error_line(history["level"], history["message"])]

    def count(df: pd.DataFrame) -> tuple[dict[str, int], dict[str, set[str]]]:
        n: dict[str, int] = {}
        by: dict[str, set[str]] = {}
        for src, msg in zip(df["service"].astype(str), df["message"].astype(str), strict=True):
            for name in _names_in(msg, pat) - {src}:
                n[name] = n.get(name, 0) + 1
                by.setdefault(name, set()).add(src)
        return n, by

    base = err[(err["time"] >= baseline[0]) & (err["time"] < baseline[1])]
    if hist is not None:
        base = pd.concat([base, hist], ignore_index=True)
    inc = err[(err["time"] >= incident[0]) & (err["time"] <= incident[1])]
    if inc.empty:
        return pd.DataFrame(columns=cols)
    n0, _ = count(base)
    n1, by = count(inc)
    all_base = int(((logs["time"] >= baseline[0]) & (logs["time"] < baseline[1])).sum())
    all_base += len(history) if history is not None else 0
    all_inc = int(((logs["time"] >= incident[0]) & (logs["time"] <= incident[1])).sum())
    share = (all_inc + 1) / (all_inc + all_base + 2)
    rows = []
    for name in sorted(n1):
        up, _ = poisson_change(np.array([n1[name]]), np.array([n0.get(name, 0)]), share)
        rows.append({"service": name, "named_baseline": n0.get(name, 0),
                     "named_incident": n1[name],
                     "named_sig": float(up[0]) if n1[name] >= min_lines else 0.0,
                     "named_by": sorted(by[name])})
    return pd.DataFrame(rows, columns=cols)
