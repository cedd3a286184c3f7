"""Header-format matching cost: RE2 (ours) vs Python's backtracking `re` on the same pattern.

Usage: .venv/bin/python benchmarks/header_formats.py [--timeout 20]

Both engines get the pattern of the loghub reference implementation (lazy `.*?` fields, the
text between fields as a regex, spaces as `\\s+`), built by `compile_header_format`.
1. Adversarial lines (many places where each lazy field could end, no match in the end) of
   1,000 to 10,000 characters: seconds per line; the backtracking engine runs in a child
   process killed after --timeout seconds.
2. Throughput on the eight loghub_2k raw files with their formats (lines/s).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from loghub_eval import DEFAULT_DATA, SYSTEMS  # noqa: E402

from incident_lib.sources.logformats import compile_header_format  # noqa: E402

FORMATS = {
    "syslog, optional PID group": r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> "
                                  r"<Location> <Component>(\[<PID>\])?: <Content>",
    "HDFS-style, 5 fields": "<Date> <Time> <Pid> <Level> <Component>: <Content>",
}


def adversarial(n: int) -> str:
    """A line of n characters of 'a ' pairs: every space is a place a field could end."""
    return ("a " * (n // 2 + 1))[:n]


_CHILD = """
import re, sys, time
pattern, line = sys.stdin.read().split("\\x00")
rx = re.compile(pattern)
t0 = time.perf_counter(); rx.search(line.strip()); print(time.perf_counter() - t0)
"""


def backtracking_seconds(pattern: str, line: str, timeout: float) -> str:
    """Seconds Python's re takes on one line, or '> timeout' when killed."""
    try:
        out = subprocess.run([sys.executable, "-c", _CHILD], input=f"{pattern}\x00{line}",
                             capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return f"> {timeout:g} (killed)"
    return f"{float(out.stdout):.4f}"


def main(argv: list[str] | None = None) -> int:
    """Print both tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--data", default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU, Python "
          f"{platform.python_version()}\n")
    print("| format | line length | RE2 s/line | Python re s/line |")
    print("|---|---:|---:|---:|")
    for name, fmt in FORMATS.items():
        hf = compile_header_format(fmt)
        for n in (100, 1_000, 10_000):
            line = adversarial(n)
            reps = 20
            t0 = time.perf_counter()
            for _ in range(reps):
                assert hf.match(line) is None
            re2_s = (time.perf_counter() - t0) / reps
            bt = backtracking_seconds(hf.pattern.pattern, line, args.timeout)
            print(f"| {name} | {n:,} | {re2_s:.6f} | {bt} |", flush=True)
    print("\n| system | lines | RE2 lines/s | Python re lines/s | same fields |")
    print("|---|---:|---:|---:|---|")
    import re

    with open(os.path.join(args.data, "formats.json"), encoding="utf-8") as fh:
        formats = json.load(fh)
    for system in SYSTEMS:
        path = os.path.join(args.data, system, f"{system}_2k.log")
        with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:
            lines = [ln.rstrip("\r\n") for ln in fh] * 10
        hf = compile_header_format(formats[system])
        rx = re.compile(hf.pattern.pattern)
        t0 = time.perf_counter()
        a = [hf.match(ln) for ln in lines]
        t1 = time.perf_counter()
        b = [(m.groupdict() if (m := rx.search(ln.strip())) else None) for ln in lines]
        t2 = time.perf_counter()
        print(f"| {system} | {len(lines):,} | {len(lines) / (t1 - t0):,.0f} | "
              f"{len(lines) / (t2 - t1):,.0f} | {a == b} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
