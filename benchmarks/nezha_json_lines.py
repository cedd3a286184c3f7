"""Copy of a Nezha export whose app lines are JSON objects, as Go/Python/Node services write.

Usage: .venv/bin/python benchmarks/nezha_json_lines.py --src /tmp/nezha --out /tmp/nezha_json
       then benchmarks/nezha.py --data /tmp/nezha_json/rca_data/<date>
                                --normal /tmp/nezha_json/construct_data/<date> ...

Every `log/*_log.csv` under SRC/{rca_data,construct_data}/<date>/ is rewritten into OUT with
the same rows; inside each row's container-runtime object, an app line of the form
`<clock> <LEVEL> <logger> <text>` becomes `{"timestamp": <clock>, "severity": <level>,
"logger": <logger>, "message": <text>}` (logrus/zap style); other lines (stack-trace
continuations) stay as they are. Spans, metrics and the fault list are linked, not copied.
The investigation then has to find the level and the message in the JSON (the `structured`
rule of the log reader): the same faults, another shape of line. Nothing is written into the
repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
from pathlib import Path

LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d+)\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s+(\S+)\s+(.*)$",
                  re.S)


def json_line(runtime: str) -> str:
    """The runtime object with its app line rewritten as JSON (unchanged when not a match)."""
    try:
        obj = json.loads(runtime)
        line = obj["log"].rstrip("\n")
    except (ValueError, KeyError, TypeError, AttributeError):
        return runtime
    m = LINE.match(line)
    if not m:
        return runtime
    app = {"timestamp": m.group(1), "severity": m.group(2).lower(), "logger": m.group(3),
           "message": m.group(4)}
    return json.dumps({**obj, "log": json.dumps(app) + "\n"})


def rewrite(src: Path, dst: Path) -> int:
    """Rewrite one dated folder; returns the number of log files written."""
    (dst / "log").mkdir(parents=True, exist_ok=True)
    for name in ("trace", "metric", "traceid"):
        if (src / name).exists() and not (dst / name).exists():
            os.symlink(src / name, dst / name)
    for f in src.glob("*fault_list.json"):
        if not (dst / f.name).exists():
            os.symlink(f, dst / f.name)
    n = 0
    for f in sorted((src / "log").glob("*_log.csv")):
        with open(f, newline="") as fi, open(dst / "log" / f.name, "w", newline="") as fo:
            rows, out = csv.reader(fi), csv.writer(fo)
            out.writerow(next(rows))
            for row in rows:
                if len(row) >= 8:
                    row[7] = json_line(row[7])
                out.writerow(row)
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", type=Path, default=Path("/tmp/nezha"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/nezha_json"))
    args = ap.parse_args()
    csv.field_size_limit(1 << 30)
    for part in ("rca_data", "construct_data"):
        for day in sorted((args.src / part).glob("*")):
            n = rewrite(day, args.out / part / day.name)
            print(f"{part}/{day.name}: {n} log files rewritten")


if __name__ == "__main__":
    main()
