"""Throughput and memory of our template miner vs drain3 on a realistic N-line input.

Usage: .venv/bin/python benchmarks/miner_throughput.py --lines 1000000 [--drain3-lines N]

Input: the Content of all 16,000 loghub_2k lines (8 systems), sampled uniformly with a fixed
seed. Each content is aligned with its ground-truth template; inside the spans that the
template marks as variables (only there: constants such as "ssh2" stay as they are), every hex
word (6+ chars mixing digits and a-f) is replaced by random hex and every run of digits by
random digits of the same length. So lines are mostly unique, not repeats, while keeping the
structure and the non-numeric variables (user names, hosts, paths) of real logs.
Both miners run in this process on the same list of messages: ours via `mine_templates`,
drain3 (generic masks, as in loghub_eval.py) via `add_log_message` per line. Peak memory is
measured in a second pass per miner with tracemalloc (allocations made by the miner, input
excluded); resource.ru_maxrss of the whole process is printed too.
"""

from __future__ import annotations

import argparse
import csv
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

import incident_lib.analysis.templates as templates_mod  # noqa: E402
from incident_lib.analysis.templates import mine_templates  # noqa: E402
from incident_lib.sources.logformats import read_log_file  # noqa: E402

_DIGITS = re.compile(r"\d+")
_HEX = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{6,}\b")


def _segments(content: str, template: str) -> list[tuple[bool, str]]:
    """Split a content into (is_variable, text) spans using its ground-truth template."""
    parts = template.split("<*>")
    rx = "".join(
        re.escape(p) + ("(.*?)" if i < len(parts) - 1 else "") for i, p in enumerate(parts)
    )
    m = re.fullmatch(rx, content, re.DOTALL)
    if m is None:
        return [(False, content)]
    out: list[tuple[bool, str]] = []
    pos = 0
    for g in range(1, (m.lastindex or 0) + 1):
        out.append((False, content[pos : m.start(g)]))
        out.append((True, m.group(g)))
        pos = m.end(g)
    out.append((False, content[pos:]))
    return [seg for seg in out if seg[1]]


def build_input(
    n: int, data: str = DEFAULT_DATA, seed: int = 7, rerandomise: bool = True
) -> list[str]:
    """N loghub contents with their variables re-randomised (see module docstring)."""
    with open(os.path.join(data, "formats.json"), encoding="utf-8") as fh:
        formats = json.load(fh)
    pool: list[list[tuple[bool, str]]] = []
    for system in SYSTEMS:
        contents = read_log_file(os.path.join(data, system, f"{system}_2k.log"), formats[system])
        path = os.path.join(data, system, f"{system}_2k.log_structured.csv")
        with open(path, encoding="utf-8", newline="") as fh:
            templates = [row["EventTemplate"] for row in csv.DictReader(fh)]
        pool.extend(_segments(c, t) for c, t in zip(contents, templates, strict=True))
    rng = random.Random(seed)

    def rand_digits(m: re.Match[str]) -> str:
        return str(rng.randrange(10 ** len(m.group()))).zfill(len(m.group()))

    def rand_hex(m: re.Match[str]) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in m.group())

    out = []
    for _ in range(n):
        segs = pool[rng.randrange(len(pool))]
        if rerandomise:
            out.append(
                "".join(
                    _DIGITS.sub(rand_digits, _HEX.sub(rand_hex, text)) if var else text
                    for var, text in segs
                )
            )
        else:
            out.append("".join(text for _, text in segs))
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
    saved = templates_mod._CACHE_MAX
    templates_mod._CACHE_MAX = 0  # worst case: no cache hits, every line goes through the regex
    try:
        nocache_s, _ = timed(run_ours, lines)
    finally:
        templates_mod._CACHE_MAX = saved
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
        f"| ours, cache disabled (worst case) | {len(lines):,} | {nocache_s:.2f} | "
        f"{len(lines) / nocache_s:,.0f} | {ours_n} | - |"
    )
    print(
        f"| drain3 0.9.11 (generic masks) | {len(d_lines):,} | {drain_s:.2f} | "
        f"{drain_rate:,.0f} | {drain_n} | {peaks['drain3']} |"
    )
    print(
        f"\nthroughput ratio ours/drain3: **{ours_rate / drain_rate:.1f}x** "
        f"(cache disabled: {len(lines) / nocache_s / drain_rate:.1f}x)",
        flush=True,
    )


def command_scenario(lines: list[str]) -> None:
    """Time the whole `incident templates` code path (read, parse header, mine, write CSV)."""
    import tempfile

    from incident_lib.cli.templates import run_templates_command

    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "big.log")
        with open(log, "w", encoding="utf-8") as fh:
            for i, line in enumerate(lines):
                fh.write(
                    f"2024-05-01 12:{i // 60000 % 60:02d}:{i // 1000 % 60:02d} INFO app: {line}\n"
                )
        t0 = time.perf_counter()
        run_templates_command(log, "<Date> <Time> <Level> <Component>: <Content>", log + ".csv")
        secs = time.perf_counter() - t0
        size = os.path.getsize(log) / 2**20
    print(f"\n### end-to-end `run_templates_command` on {len(lines):,} lines ({size:.0f} MB)\n")
    print(
        f"{secs:.2f} s = {len(lines) / secs:,.0f} lines/s (read + header regex + mine + CSV write)"
    )


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
    ap.add_argument("--command", action="store_true", help="also time run_templates_command")
    ap.add_argument("--ours-only", action="store_true", help="skip drain3 (quick check)")
    ap.add_argument("--data", default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    py = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU, Python {py}")
    t0 = time.perf_counter()
    lines = build_input(args.lines, args.data)
    print(f"input built in {time.perf_counter() - t0:.1f} s")
    if args.ours_only:
        secs, n = timed(run_ours, lines)
        print(f"ours: {len(lines) / secs:,.0f} lines/s ({secs:.2f} s, {n} templates)")
    else:
        scenario("re-randomised loghub contents", lines, args.drain3_lines, args.memory_lines)
    if args.command:
        command_scenario(lines)
    if args.plain and not args.ours_only:
        del lines
        plain = build_input(args.lines, args.data, rerandomise=False)
        scenario("plain resampled loghub contents", plain, args.drain3_lines, args.memory_lines)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS (inputs included): {rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
