"""Three per-line hot paths of an investigation against the way they were written before.

Usage: .venv/bin/python benchmarks/log_hotpaths.py [--data /tmp/nezha/rca_data/2023-01-29]
       [--at "2023-01-29 10:26:20"] [--minutes 24] [--repeat 3]

Input: the log lines of a real export (the Nezha TrainTicket layout) in the window
[at - 20 min, at + 4 min], read by the product's CSV log reader with the mapping that
benchmarks/nezha.py writes: long Java lines with a logback clock, payload dumps and a few
stack traces joined to their event.

Each path runs here beside the alternative it replaced, on the same lines, and the outputs are
checked equal before any time is printed:
- redaction of a text column (core.redact.redact_series): one combined RE2 scan picks the rows
  any rule can touch, against one scan per rule over every row (and an IPv6 prefilter that
  matched every clock such as 18:25:44.525, sending each line through Python);
- the count test of what_changed (analysis.spikes.compare_counts): scipy binom.sf / beta.ppf
  over all keys at once, against scipy.stats.binomtest and its exact interval key by key;
- error lines (analysis.evidence.is_error_line): plain-substring test of the words the pattern
  needs before the regex, against the regex on every line.
Times are the best of --repeat runs, in seconds; the ratio is alternative / ours.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from incident_lib.analysis.evidence import (  # noqa: E402
    ERROR_LEVELS,
    ERROR_PATTERN,
    is_error_line,
)
from incident_lib.analysis.spikes import compare_counts  # noqa: E402
from incident_lib.core import redact  # noqa: E402
from incident_lib.sources import make_log_source  # noqa: E402

_OLD_IPV6_PREFILTER = r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"


def redact_per_rule(values: pd.Series) -> pd.Series:
    """The redaction as written before: each rule scans every row."""
    s = values.astype(pd.StringDtype("pyarrow"))
    for rule in redact._RULES:
        if rule.fix is None:
            s = s.str.replace(rule.re2, rule.repl, regex=True)
            continue
        pre = _OLD_IPV6_PREFILTER if rule.fix is redact._ipv6 else rule.re2
        mask = s.str.contains(pre, regex=True, na=False)
        if mask.any():
            s[mask] = s[mask].map(lambda x, r=rule: r.py.sub(r.fix, x))
    return s


def counts_per_key(base: pd.Series, inc: pd.Series, bm: float, im: float) -> pd.DataFrame:
    """p-value and lower bound as computed before: scipy.stats.binomtest key by key."""
    keys = base.index.union(inc.index)
    k0 = base.reindex(keys, fill_value=0).astype(int).to_numpy()
    k1 = inc.reindex(keys, fill_value=0).astype(int).to_numpy()
    share = im / (im + bm)
    p, low = np.ones(len(keys)), np.zeros(len(keys))
    for i, (a, b) in enumerate(zip(k1, k0, strict=True)):
        if a + b == 0:
            continue
        res = stats.binomtest(int(a), int(a + b), share, alternative="greater")
        p[i] = res.pvalue
        lo = res.proportion_ci(confidence_level=0.95, method="exact").low
        low[i] = np.inf if lo >= 1 else lo / (1 - lo) * bm / im
    return pd.DataFrame({"p_value": p, "ratio_ci_low": low})


def errors_by_regex(level: pd.Series, message: pd.Series) -> np.ndarray:
    lv = level.astype("string").str.lower().isin(ERROR_LEVELS)
    ex = message.astype(str).str.contains(ERROR_PATTERN, regex=True).to_numpy(bool)
    return lv.fillna(False).to_numpy(bool) | ex


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/nezha/rca_data/2023-01-29"))
    ap.add_argument("--at", default="2023-01-29 10:26:20")
    ap.add_argument("--minutes", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    at = pd.Timestamp(args.at, tz="UTC")
    start = at - pd.Timedelta(minutes=args.minutes - 4)
    src = make_log_source({"kind": "files", "format": "csv",
                           "path": str(args.data / "log" / "*_log.csv"),
                           "fields": {"time": "Timestamp", "pod": "PodName", "message": "Log",
                                      "trace_id": "TraceID"}, "message_format": "docker_json"})
    logs = src.read_logs(start, at + pd.Timedelta("4min")).frame
    msgs = logs["message"].astype(object)
    print(f"# Log hot paths, ours vs the way they were written before ({args.data.name}, "
          f"{len(logs):,} lines of [{start:%H:%M}, {at + pd.Timedelta('4min'):%H:%M}])")
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU, Python "
          f"{platform.python_version()}, {pd.Timestamp.now('UTC'):%Y-%m-%d %H:%M} UTC; "
          f"best of {args.repeat}")
    rows = []
    t_old, a = best(lambda: redact_per_rule(msgs), args.repeat)
    t_new, b = best(lambda: redact.redact_series(msgs), args.repeat)
    assert a.astype(object).tolist() == b.astype(object).tolist(), "redaction differs"
    rows.append(("redact a message column", len(msgs), t_old, t_new))
    cut = at - pd.Timedelta("4min")
    key = [logs["service"].astype(str), logs["level"].astype(str)]
    base = logs[logs["time"] < cut].groupby(key[0] + " " + key[1] + " "
                                            + logs["message"].str[:40]).size()
    inc = logs[logs["time"] >= cut].groupby(key[0] + " " + key[1] + " "
                                            + logs["message"].str[:40]).size()
    bm, im = (cut - start).total_seconds() / 60, 8.0
    t_old, a = best(lambda: counts_per_key(base, inc, bm, im), args.repeat)
    t_new, b = best(lambda: compare_counts(base, inc, bm, im), args.repeat)
    assert np.allclose(a["p_value"], b["p_value"], rtol=1e-9, atol=1e-300)
    assert np.allclose(a["ratio_ci_low"], b["ratio_ci_low"], rtol=1e-9, atol=1e-12)
    rows.append(("what_changed count test (keys)", len(a), t_old, t_new))
    level = logs["level"].astype(object)
    t_old, a = best(lambda: errors_by_regex(level, msgs), args.repeat)
    t_new, b = best(lambda: is_error_line(level, msgs), args.repeat)
    assert (a == b).all(), "error lines differ"
    rows.append((f"error lines ({int(b.sum())} found)", len(msgs), t_old, t_new))
    print("| path | items | before (s) | ours (s) | before / ours |")
    print("|---|---|---|---|---|")
    for name, n, old, new in rows:
        print(f"| {name} | {n:,} | {old:.3f} | {new:.3f} | {old / new:.1f}x |")


if __name__ == "__main__":
    main()
