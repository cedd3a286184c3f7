"""Group accuracy of our template miner vs drain3 (generic masks) on loghub_2k.

Usage: .venv/bin/python benchmarks/loghub_eval.py [--data /work/shared/data/loghub_2k]

Ours runs through `run_templates_command` (the code behind `incident templates`) and is scored
from the CSV it writes; drain3 parses the same Content strings, read by the same header parser.
Both use one configuration for every system. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from incident_lib.sources.logformats import group_accuracy, read_log_file, run_templates_command  # noqa: E402

DEFAULT_DATA = str(next(
    (p for p in (Path(__file__).resolve().parents[2] / "shared/data/loghub_2k",
                 Path("/work/shared/data/loghub_2k")) if p.is_dir()),
    Path("/work/shared/data/loghub_2k")))
SYSTEMS = ["HDFS", "Hadoop", "Spark", "Zookeeper", "Android", "HealthApp", "Apache", "OpenSSH"]

# drain3's own example masking (drain3.ini in its repository), minus the one
# application-specific rule (`executed cmd`): IDs, IPs, hex sequences, hex numbers, numbers.
_B = r"((?<=[^A-Za-z0-9])|^)"
_E = r"((?=[^A-Za-z0-9])|$)"
DRAIN3_GENERIC_MASKS = [
    (_B + r"(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))" + _E, "ID"),
    (_B + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})" + _E, "IP"),
    (_B + r"([0-9a-f]{6,} ?){3,}" + _E, "SEQ"),
    (_B + r"([0-9A-F]{4} ?){4,}" + _E, "SEQ"),
    (_B + r"(0x[a-f0-9A-F]+)" + _E, "HEX"),
    (_B + r"([\-\+]?\d+)" + _E, "NUM"),
]


def make_drain3():  # -> drain3.TemplateMiner
    """A drain3 TemplateMiner with default Drain parameters and the generic masks above."""
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    cfg = TemplateMinerConfig()
    cfg.masking_instructions = [MaskingInstruction(p, m) for p, m in DRAIN3_GENERIC_MASKS]
    cfg.profiling_enabled = False
    cfg.parametrize_numeric_tokens = True
    return TemplateMiner(config=cfg)


def drain3_groups(contents: list[str]) -> list[int]:
    """drain3 cluster id of each message."""
    miner = make_drain3()
    return [miner.add_log_message(c)["cluster_id"] for c in contents]


def truth(data: str, system: str) -> list[str]:
    """Ground-truth EventTemplate of every line (the label that defines a group)."""
    path = os.path.join(data, system, f"{system}_2k.log_structured.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        return [row["EventTemplate"] for row in csv.DictReader(fh)]


def ours_groups(logfile: str, fmt: str) -> list[str]:
    """EventId of each line as written by run_templates_command."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.csv")
        run_templates_command(logfile, fmt, out)
        with open(out, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    assert [int(r["LineId"]) for r in rows] == list(range(1, len(rows) + 1))
    return [r["EventId"] for r in rows]


def main(argv: list[str] | None = None) -> int:
    """Run both miners on every system and print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    with open(os.path.join(args.data, "formats.json"), encoding="utf-8") as fh:
        formats = json.load(fh)
    print("| system | lines | GA ours | GA drain3 | templates ours / truth | s ours | s drain3 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ours_all, drain_all = [], []
    for system in SYSTEMS:
        logfile = os.path.join(args.data, system, f"{system}_2k.log")
        gt = truth(args.data, system)
        t0 = time.perf_counter()
        ours = ours_groups(logfile, formats[system])
        t1 = time.perf_counter()
        contents = read_log_file(logfile, formats[system])
        drain = drain3_groups(contents)
        t2 = time.perf_counter()
        ga_o, ga_d = group_accuracy(ours, gt), group_accuracy(drain, gt)
        ours_all.append(ga_o)
        drain_all.append(ga_d)
        print(
            f"| {system} | {len(gt)} | {ga_o:.3f} | {ga_d:.3f} | "
            f"{len(set(ours))} / {len(set(gt))} | {t1 - t0:.2f} | {t2 - t1:.2f} |"
        )
    n = len(SYSTEMS)
    print(f"| **average** | | **{sum(ours_all) / n:.4f}** | **{sum(drain_all) / n:.4f}** | | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
