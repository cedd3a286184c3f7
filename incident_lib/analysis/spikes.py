"""What changed in logs: new or surging templates and over-represented field values."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["compare_counts", "template_changes", "what_changed"]

LEVEL_WEIGHT = {"error": 1.0, "fatal": 1.0, "critical": 1.0, "warn": 0.5, "warning": 0.5}


def compare_counts(
    base: pd.Series, inc: pd.Series, base_minutes: float, inc_minutes: float
) -> pd.DataFrame:
    """Per key: counts, rates per minute, rate ratio (effect size), p-value, BH q-value.

    The test is the exact conditional test of two Poisson rates: given n = k_inc + k_base,
    k_inc ~ Binomial(n, T_inc / (T_inc + T_base)) under "no change" (what scipy.stats.binomtest
    computes, vectorised over the keys).
    Effect size: rate_ratio = incident rate / baseline rate (baseline count + 0.5, so a new
    key has a finite ratio), its log2, and ratio_ci_low, the lower end of the exact 95%
    Clopper-Pearson interval of the binomial share turned into a rate ratio (how large the
    increase is at least, finite even for a key absent from the baseline).
    """
    keys = base.index.union(inc.index)
    k0 = base.reindex(keys, fill_value=0).astype(int).to_numpy()
    k1 = inc.reindex(keys, fill_value=0).astype(int).to_numpy()
    share = inc_minutes / (inc_minutes + base_minutes)
    n = k0 + k1
    # binomtest(k1, n, share, alternative="greater"), vectorised: its p-value is the upper
    # tail P(X >= k1) and its exact interval's lower end the Beta quantile (Clopper-Pearson)
    p = np.where(n > 0, np.minimum(stats.binom.sf(k1 - 1, n, share), 1.0), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(k1 > 0, stats.beta.ppf(0.05, np.maximum(k1, 1), k0 + 1), 0.0)
        low = np.where(lo >= 1, np.inf, lo / (1 - lo) * base_minutes / inc_minutes)
    q = stats.false_discovery_control(p, method="bh") if len(p) else p
    rate0 = k0 / base_minutes
    rate1 = k1 / inc_minutes
    ratio = rate1 / ((k0 + 0.5) / base_minutes)
    with np.errstate(divide="ignore"):
        log2 = np.log2(ratio)
    return pd.DataFrame({"key": keys, "baseline_count": k0, "incident_count": k1,
                         "baseline_per_min": rate0, "incident_per_min": rate1,
                         "rate_ratio": ratio, "log2_ratio": log2, "ratio_ci_low": low,
                         "p_value": p, "q_value": q})


def template_changes(
    logs: pd.DataFrame,
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    *,
    min_count: int = 5,
    min_ratio: float = 3.0,
    alpha: float = 0.01,
) -> pd.DataFrame:
    """Templates (per service) new or surging in the incident window against the baseline.

    `logs` has columns time, service, level, template_id, template. A template is `new` when
    it never occurs in the baseline and at least min_count times in the incident window, and
    `surging` when its rate ratio is >= min_ratio with BH q-value < alpha.
    """
    b0, b1 = baseline
    i0, i1 = incident
    bm = max((b1 - b0).total_seconds() / 60, 1e-9)
    im = max((i1 - i0).total_seconds() / 60, 1e-9)
    in_b = logs[(logs["time"] >= b0) & (logs["time"] < b1)]
    in_i = logs[(logs["time"] >= i0) & (logs["time"] <= i1)]
    key = ["service", "template_id"]
    cb = in_b.groupby(key).size()
    ci = in_i.groupby(key).size()
    out = compare_counts(cb, ci, bm, im)
    if out.empty:
        return out.assign(service=[], template_id=[], template=[], level=[], status=[], weight=[])
    out[["service", "template_id"]] = pd.DataFrame(out.pop("key").tolist(), index=out.index)
    meta = logs.groupby("template_id").agg(template=("template", "first"))
    lvl = (in_i if len(in_i) else logs).groupby(key)["level"].agg(_main_level)
    out = out.join(meta, on="template_id")
    out["level"] = [lvl.get((s, t), "") for s, t in zip(out["service"], out["template_id"],
                                                           strict=True)]
    new = (out["baseline_count"] == 0) & (out["incident_count"] >= min_count)
    surging = ~new & (out["rate_ratio"] >= min_ratio) & (out["q_value"] < alpha)
    out["status"] = np.where(new, "new", np.where(surging, "surging", ""))
    out["weight"] = out["level"].map(LEVEL_WEIGHT).fillna(0.2)
    out = out[out["status"] != ""].copy()
    out = out.sort_values(["weight", "status", "incident_count"], ascending=[False, True, False])
    cols = ["service", "template_id", "template", "level", "status", "baseline_count",
            "incident_count", "baseline_per_min", "incident_per_min", "rate_ratio",
            "log2_ratio", "ratio_ci_low", "p_value", "q_value", "weight"]
    return out[cols].reset_index(drop=True)


def _value_text(v: object) -> str:
    """A field value as people write it: status 503, not 503.0 (a float column from NaNs)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _main_level(levels: pd.Series) -> str:
    """The most common level of a template's lines, "" when the data has none (None/NaN)."""
    known = levels.dropna()
    known = known[known.astype(str).str.strip() != ""]
    if known.empty:
        return ""
    return str(known.astype(str).str.lower().mode().iat[0])


def what_changed(
    base: pd.DataFrame,
    inc: pd.DataFrame,
    fields: list[str],
    base_minutes: float,
    inc_minutes: float,
    *,
    pairs: bool = True,
    alpha: float = 0.01,
    max_values: int = 200,
) -> pd.DataFrame:
    """Field values (and pairs) over-represented in the incident window, with BH q-values.

    One row per (field or field pair, value) with counts, rate_ratio / log2_ratio /
    ratio_ci_low (effect size), p_value and q_value (Benjamini-Hochberg over every value and
    pair tested); kept when q_value < alpha and rate_ratio > 1.5, most significant first.
    """
    rows = []
    combos: list[tuple[str, ...]] = [(f,) for f in fields]
    if pairs:
        combos += list(itertools.combinations(fields, 2))
    for combo in combos:
        cols = list(combo)
        cb = base.groupby(cols, dropna=False).size()
        ci = inc.groupby(cols, dropna=False).size().nlargest(max_values)
        cb = cb[cb.index.isin(ci.index)] if len(ci) else cb.iloc[:0]
        res = compare_counts(cb, ci, base_minutes, inc_minutes)
        res.insert(0, "field", " & ".join(cols))
        res["value"] = res.pop("key").map(lambda k: " & ".join(map(_value_text, k))
                                          if isinstance(k, tuple) else _value_text(k))
        rows.append(res)
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    out["q_value"] = stats.false_discovery_control(out["p_value"].to_numpy(), method="bh")
    out = out[(out["q_value"] < alpha) & (out["rate_ratio"] > 1.5)]
    return out.sort_values(["q_value", "rate_ratio"], ascending=[True, False]).reset_index(
        drop=True)
