"""Scenario suite: every fault type x seeds through the real runner, scored against truth.json.

Usage: .venv/bin/python benchmarks/scenarios.py --seeds 3 [--first-seed 1] [--size 50000]
       [--faults a,b] [--keep DIR] [--out FILE]

For each fault type (incident_lib.demo.scenarios.FAULTS) and seed 1..N: generate the dataset, open
the incident from its alert.json (alerts.incident_from_alert), run the four notebooks with
papermill (runner.create_run + runner.execute, INCIDENT_RUNS_DIR in a temporary folder), then
read findings/correlation.json, findings/triage.json and report.md. Scores:
- AC@k: the root-cause service AND change (or "no change" when truth has none) are in the
  top k suspects;
- onset error: |detected onset - true onset|;
- wrong as fact: report.md states "The most likely root cause is ..." (not "leading suspect")
  and the top suspect's service or change is wrong.
Prints a Markdown table per fault plus totals and writes benchmarks/results/scenarios.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from incident_lib.demo.scenarios import FAULTS, generate_scenario  # noqa: E402


def _hit(s: dict, truth: dict) -> bool:
    """True when a suspect names the true service and the true change (or no change)."""
    return (s["service"] == truth["root_cause_service"]
            and s.get("change_id") == truth["root_cause_change"])


def run_one(fault: str, seed: int, size: int, work: Path) -> dict:
    """Generate, investigate through the runner, and score one scenario."""
    import pandas as pd

    from incident_lib.core.config import load_config
    from incident_lib.pipeline.alerts import incident_from_alert
    from incident_lib.pipeline.runner import create_run, execute

    data = generate_scenario(work / "data" / f"{fault}-{seed}", fault, seed=seed, size=size)
    truth = json.loads((data / "truth.json").read_text())
    payload = json.loads((data / "alert.json").read_text())
    inc = incident_from_alert(payload, load_config(data_dir=data),
                              incident_id=f"{fault.replace('_', '-')}-s{seed}")
    t0 = time.perf_counter()
    path = create_run(inc, replace=True)
    status = execute(path, export=False)
    secs = time.perf_counter() - t0
    row = {"fault": fault, "seed": seed, "state": status["state"], "seconds": secs,
           "truth": f"{truth['root_cause_service']}/{truth['root_cause_change'] or '-'}"}
    try:
        cor = json.loads((path / "findings" / "correlation.json").read_text())["data"]
        tri = json.loads((path / "findings" / "triage.json").read_text())["data"]
        report = (path / "report.md").read_text()
    except (OSError, KeyError, ValueError) as exc:
        return {**row, "ac1": False, "ac3": False, "onset_err_s": None, "fact": False,
                "wrong_fact": False, "top": f"(error: {exc})"}
    sus = cor.get("suspects") or []
    top = sus[0] if sus else None
    onset = tri["onset"]["time"]
    err = (abs((pd.Timestamp(onset) - pd.Timestamp(truth["onset"])).total_seconds())
           if onset else None)
    fact = "most likely root cause is" in report
    ac1 = bool(top and _hit(top, truth))
    return {**row, "ac1": ac1, "ac3": any(_hit(s, truth) for s in sus[:3]),
            "onset_err_s": err, "fact": fact, "wrong_fact": fact and not ac1,
            "top": f"{top['service']}/{top.get('change_id') or '-'} ({top['score']:.2f})"
            if top else "(none)"}


def table(rows: list[dict]) -> str:
    """Markdown: one line per fault, then totals."""
    out = ["| fault | runs | AC@1 | AC@3 | median onset error | wrong cause as fact | "
           "stated as fact |", "|---|---|---|---|---|---|---|"]

    def line(name: str, rs: list[dict]) -> str:
        errs = [r["onset_err_s"] for r in rs if r["onset_err_s"] is not None]
        med = f"{statistics.median(errs):.0f} s" if errs else "n/a"
        missing = len(rs) - len(errs)
        if missing:
            med += f" ({missing} without onset)"
        return (f"| {name} | {len(rs)} | {sum(r['ac1'] for r in rs) / len(rs):.2f} | "
                f"{sum(r['ac3'] for r in rs) / len(rs):.2f} | {med} | "
                f"{sum(r['wrong_fact'] for r in rs)} | {sum(r['fact'] for r in rs)} |")

    for fault in dict.fromkeys(r["fault"] for r in rows):
        out.append(line(fault, [r for r in rows if r["fault"] == fault]))
    out.append(line("**all**", rows))
    return "\n".join(out)


def detail(rows: list[dict]) -> str:
    """Markdown: every run with truth, top suspect, onset error."""
    out = ["| fault | seed | truth | top suspect (score) | AC@1 | AC@3 | onset error | fact |"
           " state |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        err = "n/a" if r["onset_err_s"] is None else f"{r['onset_err_s']:.0f} s"
        out.append(f"| {r['fault']} | {r['seed']} | {r['truth']} | {r['top']} | "
                   f"{'yes' if r['ac1'] else 'no'} | {'yes' if r['ac3'] else 'no'} | {err} | "
                   f"{'yes' if r['fact'] else 'no'} | {r['state']} |")
    return "\n".join(out)


def main() -> None:
    """Run the suite, print the tables, write benchmarks/results/scenarios.md."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds per fault")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--size", type=int, default=50_000, help="log lines per scenario")
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--out", default=str(HERE / "results" / "scenarios.md"))
    ap.add_argument("--keep", default="", help="keep data and runs in this folder")
    args = ap.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    rows = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scenarios-") as tmp:
        work = Path(args.keep or tmp)
        os.environ["INCIDENT_RUNS_DIR"] = str(work / "runs")
        for fault in faults:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                r = run_one(fault, seed, args.size, work)
                rows.append(r)
                print(f"{fault} seed {seed}: top {r['top']} truth {r['truth']} "
                      f"onset error {r['onset_err_s']} s, fact {r['fact']} "
                      f"({r['seconds']:.1f} s)", file=sys.stderr, flush=True)
    total = time.perf_counter() - t_all
    summary = table(rows)
    print(summary)
    cmd = f"--seeds {args.seeds}" + (f" --first-seed {args.first_seed}"
                                     if args.first_seed != 1 else "")
    text = (f"# Scenario suite\n\nCommand: `.venv/bin/python benchmarks/scenarios.py {cmd}` "
            f"({args.size:,} log lines per scenario, {len(rows)} runs).\n\n"
            f"Machine: {os.cpu_count()} vCPU ({platform.machine()}, Python "
            f"{platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
            f"; total {total / 60:.1f} min including data generation.\n\n"
            "AC@k: root-cause service and change (or no change) in the top k suspects. "
            "Onset error: |detected - true onset|. Wrong cause as fact: the report says "
            "\"The most likely root cause is\" and the top suspect is wrong.\n\n"
            f"{summary}\n\n## Every run\n\n{detail(rows)}\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
