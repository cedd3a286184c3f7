"""Throughput and memory of our template miner vs drain3 on a realistic N-line input.

Usage: .venv/bin/python benchmarks/miner_throughput.py --lines 1000000 [--drain3-lines N]

Input: the Content of all 16,000 loghub_2k lines (8 systems), sampled uniformly with a fixed
seed; in every sampled line each run of digits is replaced by random digits of the same length
and each long hex word by random hex, so lines are mostly unique (not repeats) while keeping
the structure and non-numeric variables (user names, hosts, paths) of real logs.
Both miners run in this process on the same list of messages: ours via `mine_templates`,
drain3 (generic masks, as in loghub_eval.py) via `add_log_message` per line. Peak memory is
measured in a second pass per miner with tracemalloc (allocations made by the miner, input
excluded); resource.ru_maxrss of the whole process is printed too.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import resource
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from loghub_eval import DEFAULT_DATA, SYSTEMS, make_drain3  # noqa: E402

from incident_lib.analysis.templates import mine_templates  # noqa: E402
from incident_lib.loghub import read_log_file  # noqa: E402

_DIGITS = re.compile(r"\d+")
_HEX = re.compile(r"\b[0-9a-f]{8,}\b")


def build_input(
    n: int, data: str = DEFAULT_DATA, seed: int = 7, rerandomise: bool = True
) -> list[str]:
    """N loghub contents with their numbers and hex ids re-randomised (see module docstring)."""
    with open(os.path.join(data, "formats.json"), encoding="utf-8") as fh:
        formats = json.load(fh)
    pool: list[str] = []
    for system in SYSTEMS:
        pool.extend(read_log_file(os.path.join(data, system, f"{system}_2k.log"), formats[system]))
    rng = random.Random(seed)
    rand_digits = lambda m: str(rng.randrange(10 ** len(m.group()))).zfill(len(m.group()))  # noqa: E731
    rand_hex = lambda m: "".join(rng.choice("0123456789abcdef") for _ in m.group())  # noqa: E731
    out = []
    for _ in range(n):
        line = pool[rng.randrange(len(pool))]
        if rerandomise:
            line = _DIGITS.sub(rand_digits, _HEX.sub(rand_hex, line))
        out.append(line)
    return out


def run_ours(lines: list[str]) -> int:
    """Mine with our miner; return the number of templates."""
    _, templates = mine_templates(lines)
    return len(templates)


def run_drain3(lines: list[str]) -> int:
    """Mine with drain3; return the number of clusters."""
    miner = make_drain3()
    add = miner.add_log_message
    for line in lines:
        add(line)
    return len(miner.drain.clusters)


def timed(fn, lines: list[str]) -> tuple[float, int]:
    """Seconds taken by fn(lines) and its result."""
    gc.collect()
    t0 = time.perf_counter()
    res = fn(lines)
    return time.perf_counter() - t0, res


def traced_peak(fn, lines: list[str]) -> int:
    """Peak bytes allocated while fn(lines) runs (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn(lines)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def scenario(name: str, lines: list[str], drain3_lines: int, memory: int) -> None:
    """Time (and optionally trace) both miners on one input; print a Markdown table."""
    print(f"\n### {name}: {len(lines):,} lines ({len(set(lines)):,} distinct)\n")
    ours_s, ours_n = timed(run_ours, lines)
    d_lines = lines[:drain3_lines] if drain3_lines else lines
    drain_s, drain_n = timed(run_drain3, d_lines)
    ours_rate, drain_rate = len(lines) / ours_s, len(d_lines) / drain_s
    peaks = {"ours": "-", "drain3": "-"}
    if memory:
        peaks["ours"] = f"{traced_peak(run_ours, lines) / 2**20:.1f}"
        m_lines = lines[:memory]
        peaks["drain3"] = f"{traced_peak(run_drain3, m_lines) / 2**20:.1f} ({len(m_lines):,} lines)"
    print("| miner | lines | seconds | lines/s | templates | peak traced MB |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| ours (mine_templates) | {len(lines):,} | {ours_s:.2f} | {ours_rate:,.0f} | "
        f"{ours_n} | {peaks['ours']} |"
    )
    print(
        f"| drain3 0.9.11 (generic masks) | {len(d_lines):,} | {drain_s:.2f} | "
        f"{drain_rate:,.0f} | {drain_n} | {peaks['drain3']} |"
    )
    print(f"\nthroughput ratio ours/drain3: **{ours_rate / drain_rate:.1f}x**", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Build the inputs, time both miners, print Markdown summaries."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--drain3-lines", type=int, default=0, help="time drain3 on a prefix only")
    ap.add_argument(
        "--memory-lines",
        type=int,
        default=200_000,
        help="drain3 lines for the tracemalloc pass (ours always traces all); 0 = no memory",
    )
    ap.add_argument("--plain", action="store_true", help="also run on non-re-randomised lines")
    ap.add_argument("--data", default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    py = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU, Python {py}")
    t0 = time.perf_counter()
    lines = build_input(args.lines, args.data)
    print(f"input built in {time.perf_counter() - t0:.1f} s")
    scenario("re-randomised loghub contents", lines, args.drain3_lines, args.memory_lines)
    if args.plain:
        del lines
        plain = build_input(args.lines, args.data, rerandomise=False)
        scenario("plain resampled loghub contents", plain, args.drain3_lines, args.memory_lines)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS (inputs included): {rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
