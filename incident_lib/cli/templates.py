"""`incident templates LOGFILE`: mine the templates of a log file into a CSV."""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from collections.abc import Sequence

from ..analysis.templates import mine_templates
from ..core.errors import InputError
from ..sources.logformats import compile_header_format, read_log_file

__all__ = ["cmd_templates", "run_templates_command", "write_templates_csv"]


def write_templates_csv(
    out: str, contents: Sequence[str], ids: Sequence[str], templates: dict[str, str]
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
            rows = zip(contents, ids, strict=True)
            w.writerows((i, c, t, templates[t]) for i, (c, t) in enumerate(rows, start=1))
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def run_templates_command(logfile: str, fmt: str, out: str) -> int:
    """Mine templates of LOGFILE (loghub header FORMAT) and write one CSV row per line to OUT."""
    hf = compile_header_format(fmt)
    contents = read_log_file(logfile, hf)
    ids, templates = mine_templates(contents)
    write_templates_csv(out, contents, ids, templates)
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    try:
        return run_templates_command(args.logfile, args.format, args.out)
    except ValueError as exc:
        raise InputError(str(exc)) from None
