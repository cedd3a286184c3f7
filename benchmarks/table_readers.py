"""Reading a raw export for one window: only overlapping files vs every file, same run.

Usage: .venv/bin/python benchmarks/table_readers.py --data rca_data/<date> [--at ISO] [--repeat 3]

Reads logs and spans of a Nezha-shaped folder (incident.yaml as written by benchmarks/nezha.py)
for the window [at - 20 min, at + 4 min] twice: with the file pruning of sources/tables.py
(each file's time range probed from its first and last 16 KiB) and with pruning disabled
(`file_slack` so large that every file overlaps), and prints the best wall time of --repeat
runs, the files parsed and the rows returned (which must be equal).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from nezha import incident_yaml  # noqa: E402

from incident_lib.sources import make_log_source, make_span_source  # noqa: E402


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    """Print one row per reader and mode."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--at", default="2023-01-29T09:12:00Z")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    cfg = yaml.safe_load(incident_yaml(args.data))["sources"]
    at = pd.Timestamp(args.at)
    start, end = at - pd.Timedelta("20min"), at + pd.Timedelta("4min")
    print(f"machine: {platform.machine()} {platform.processor() or ''} python "
          f"{platform.python_version()}; window {start} .. {end}")
    print("| reader | mode | files parsed | rows | best seconds |\n|---|---|---|---|---|")
    for what, make, call in (
            ("logs", make_log_source, lambda s: s.read_logs(start, end)),
            ("spans", make_span_source, lambda s: s.spans(start, end))):
        rows = {}
        for mode, slack in (("overlapping files only", "5min"), ("every file", "3650d")):
            src = make({**cfg[what], "file_slack": slack})
            secs, res = _best(lambda src=src, call=call: call(src), args.repeat)
            rows[mode] = len(res.frame)
            print(f"| {what} | {mode} | {res.notes['files_read']} | {len(res.frame)} | "
                  f"{secs:.2f} |")
        if len(set(rows.values())) != 1:
            print(f"MISMATCH in {what}: {rows}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
