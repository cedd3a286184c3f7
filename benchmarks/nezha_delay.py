"""A network delay injected into the real traces of the Nezha TrainTicket day: does the link
view of the ranking (analysis.traces.link_table, the `trace_link` kind) find the delayed pod?

Usage: .venv/bin/python benchmarks/nezha_delay.py [--data /tmp/nezha/rca_data/2023-01-29]
       [--normal /tmp/nezha/construct_data/2023-01-29] [--per-window 3] [--delays 50,200]

The shared day holds no network-delay fault, so this is a mechanism check on real traces,
not an accuracy figure: for every fault window (the same windows as benchmarks/nezha_rank.py),
up to `--per-window` services with at least 30 spans in the incident part (not the entry
service, not the window's own culprit; drawn with a fixed seed) get a delay of each size on
every call they are an end of, as a delay on the pod's egress would (tc netem): their
callers' client spans wait that much longer for the answer and their own client spans leave
that much later; every ancestor span grows by the same amount, so no other span's self time
changes. The window's real fault stays in the data, so the full ranking holds two faults.

Printed per delay: how often the injected service is first on the link kind alone, first and
in the top 3 of the full ranking (RankConfig()) once the window's own culprit is set aside
(it keeps its own evidence, which outweighs one kind), and how often it was on no slow link (most
often: none of its call edges had 5 calls in the baseline, so none could be judged). Last
line: `overall injections=N link AC@1=.. ranking AC@1=.. AC@3=..`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import nezha_rank as nr  # noqa: E402
from nezha_load import load_window, service_of  # noqa: E402

from incident_lib.analysis.rootcause import RankConfig, rank_services  # noqa: E402
from incident_lib.analysis.traces import trace_evidence  # noqa: E402
from incident_lib.core.model import span_key  # noqa: E402


def inject_delay(spans: pd.DataFrame, service: str, ms: float, since: pd.Timestamp
                 ) -> pd.DataFrame:
    """`spans` with `ms` added to every call `service` is an end of, from `since` on: the
    calling span of each such call, and every ancestor of it, grows by `ms`."""
    own = span_key(spans["trace_id"], spans["span_id"]).to_numpy()
    up = span_key(spans["trace_id"], spans["parent_id"]).to_numpy()
    pos = {k: i for i, k in enumerate(own)}
    svc = spans["service"].astype(str).to_numpy()
    late = (spans["start"] >= since).to_numpy()
    add = np.zeros(len(spans))
    for i in range(len(spans)):
        p = pos.get(up[i]) if up[i] is not None else None
        if p is None or not late[i] or (svc[i] == service) == (svc[p] == service):
            continue
        while p is not None:
            add[p] += ms
            p = pos.get(up[p]) if up[p] is not None else None
    return spans.assign(duration_ms=spans["duration_ms"].to_numpy(float) + add)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/nezha/rca_data/2023-01-29"))
    ap.add_argument("--normal", type=Path, default=Path("/tmp/nezha/construct_data/2023-01-29"))
    ap.add_argument("--per-window", type=int, default=3)
    ap.add_argument("--delays", default="50,200")
    args = ap.parse_args()
    delays = [float(x) for x in args.delays.split(",")]
    lookback = pd.Timedelta("7min")
    fl = json.loads(next(args.data.glob("*fault_list.json")).read_text())
    faults = [f for hour in fl.values() for f in hour]
    day = pd.Timestamp(faults[0]["inject_time"], tz="UTC").normalize()
    _, hl, hs = load_window(args.normal, day, day + pd.Timedelta(days=1))
    rng = np.random.default_rng(13)
    cfg = RankConfig()
    res: dict[float, list[tuple[int, int]]] = {d: [] for d in delays}
    for f in faults:
        t0 = pd.Timestamp(f["inject_time"], tz="UTC")
        base, inc = (t0 - nr.BEFORE, t0 - lookback), (t0 - lookback, t0 + nr.AFTER)
        feat = nr.features(args.data, base, inc, (hl, hs))
        _, _, spans = load_window(args.data, base[0], inc[1])
        counts = spans.loc[spans["start"] >= inc[0], "service"].value_counts()
        roots = set(spans.loc[spans["parent_id"].isna(), "service"])
        truth = service_of(f["inject_pod"])
        pool = sorted(s for s in counts.index if counts[s] >= 30 and s not in roots
                      and s != truth)
        for c in rng.choice(pool, size=min(args.per_window, len(pool)), replace=False):
            for d in delays:
                te = trace_evidence(inject_delay(spans, str(c), d, inc[0]),
                                    (base[0], base[0]), inc, history=hs)
                link = te.set_index("service")["link_slow"]
                table = feat["table"].copy()
                table["trace_link"] = link.reindex(table.index).fillna(0.0)
                ranked = rank_services(table, cfg, calls=feat["calls"])
                hit = ranked[ranked["service"] == c]
                others = ranked[ranked["service"] != truth]  # the window's own fault aside
                rank = (int((others["score"] >= hit["score"].iloc[0]).sum()) if len(hit)
                        else 99)
                alone = int((link >= link.get(c, 0.0)).sum()) if link.get(c, 0.0) > 0 else 99
                res[d].append((alone, rank))
                print(f"{t0:%H:%M} {c:32s} +{d:.0f} ms: link rank {alone}, ranking {rank}")
    print("\n| delay | injections | link kind AC@1 | ranking AC@1 | ranking AC@3 "
          "| on no slow link |")
    print("|---|---|---|---|---|---|")
    allr = []
    for d, rows in res.items():
        a = np.array([r[0] for r in rows])
        b = np.array([r[1] for r in rows])
        none = sum(1 for r in rows if r[0] == 99)
        allr += rows
        print(f"| +{d:.0f} ms | {len(rows)} | {np.mean(a <= 1):.2f} | {np.mean(b <= 1):.2f} | "
              f"{np.mean(b <= 3):.2f} | {none} |")
    a = np.array([r[0] for r in allr])
    b = np.array([r[1] for r in allr])
    print(f"overall injections={len(allr)} link AC@1={np.mean(a <= 1):.2f} "
          f"ranking AC@1={np.mean(b <= 1):.2f} AC@3={np.mean(b <= 3):.2f}")


if __name__ == "__main__":
    main()
