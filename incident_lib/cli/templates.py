"""`incident templates LOGFILE`: mine the templates of a log file into a CSV.

Header formats and format recognition live in `sources.logformats`; this module joins them
with the miner (`analysis.templates`), which a source may not import.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from collections.abc import Sequence

from ..analysis.templates import mine_templates
from ..core.errors import InputError
from ..sources.logformats import describe_format, read_log_records

__all__ = ["cmd_templates", "run_templates_command", "write_templates_csv"]


def write_templates_csv(
    out: str,
    contents: Sequence[str],
    ids: Sequence[str],
    templates: dict[str, str],
    line_ids: Sequence[int] | None = None,
) -> None:
    """Write LineId,Content,EventId,EventTemplate rows atomically (temp file + os.replace)."""
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise ValueError(f"output directory not found: {directory}")
    fd, tmp = tempfile.mkstemp(prefix=".templates-", suffix=".csv.tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["LineId", "Content", "EventId", "EventTemplate"])
            nums = line_ids if line_ids is not None else range(1, len(contents) + 1)
            rows = zip(nums, contents, ids, strict=True)
            w.writerows((i, c, t, templates[t]) for i, c, t in rows)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def run_templates_command(
    logfile: str, fmt: str | None, out: str, *, quiet: bool = False
) -> int:
    """Mine templates of LOGFILE and write one CSV row per event (per line with a loghub
    header FORMAT; without it the format is detected and multi-line events are joined, the row
    keeping the LineId of the event's first line). Says which format matched how many lines."""
    records, used = read_log_records(logfile, fmt)
    contents = [r.message for r in records]
    ids, templates = mine_templates(contents)
    write_templates_csv(out, contents, ids, templates, [r.line for r in records])
    if not quiet:
        print(f"{describe_format(used, records)}; {len(templates)} templates -> {out}",
              file=sys.stderr)
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    """`incident templates`: ValueError (bad format, unreadable file) becomes an InputError."""
    try:
        return run_templates_command(args.logfile, args.format, args.out)
    except ValueError as exc:
        raise InputError(str(exc)) from None
