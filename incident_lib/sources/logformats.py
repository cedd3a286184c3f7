"""Log line formats: loghub header formats and recognition of the formats everybody has.

Two ways to split a raw log line into a header (time, level, service, ...) and its message:

* ``compile_header_format(fmt)``: a loghub header format. As in the reference implementation
  (logparser), the text between ``<Field>`` tokens is a regular expression (a run of spaces
  matches any whitespace, ``(\\[<PID>\\])?`` is an optional group) and every field is a lazy
  ``.*?``. The pattern is compiled with Google RE2 (``google-re2``), an automaton engine whose
  matching time is linear in the line length for every pattern: a backtracking engine takes
  seconds to hours on one long adversarial line for the same pattern (BENCHMARKS.md), and
  RE2 keeps the reference semantics (lazy fields, optional groups) that possessive or atomic
  rewrites for Python's ``re`` would change.
* ``detect_format(lines)``: recognise a common format from a sample of lines (see
  ``logdetect``); ``parse_lines(lines, fmt)`` turns lines into ``Record``s, joining multi-line
  events (stack traces, tracebacks) to the line that starts them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from .linear_re import LinearPattern
from .linear_re import error as _re2_error
from .logdetect import Detected, Record, detect_format, is_continuation, iter_detected

__all__ = [
    "HeaderFormat",
    "compile_header_format",
    "Detected",
    "Record",
    "detect_format",
    "parse_lines",
    "iter_records",
    "is_continuation",
    "open_log",
    "read_contents",
    "read_log_file",
    "read_log_records",
    "describe_format",
]

_FIELD = re.compile(r"(<[^<>]+>)")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class HeaderFormat:
    """A compiled loghub header format: its field names and an RE2 pattern (linear time)."""

    fmt: str
    fields: tuple[str, ...]
    pattern: LinearPattern
    content_pattern: LinearPattern  # the same, capturing <Content> only (less work per line)

    def match(self, line: str) -> dict[str, str] | None:
        """Fields of one line (without its newline), or None when the header does not match."""
        text = line.strip()
        try:
            m = self.pattern.groupdict(text)
            if m is None and text != line:
                m = self.pattern.groupdict(line)
        except UnicodeError:  # lone surrogates cannot reach RE2: the line does not match
            return None
        return m

    def content(self, line: str) -> str | None:
        """Return the `<Content>` part of a line, or None if the line does not match."""
        line = line.rstrip("\r\n")
        text = line.strip()
        try:
            m = self.content_pattern.groups(text)
            if m is None and text != line:
                m = self.content_pattern.groups(line)
        except UnicodeError:
            return None
        return None if m is None else m[0]


def compile_header_format(fmt: str) -> HeaderFormat:
    """Compile loghub header notation (`<Field>` tokens, regex between them) with RE2."""
    if not isinstance(fmt, str) or not fmt.strip():
        raise ValueError("bad log format: empty format string")
    if re.search(r"(?<!\\)(?:\\\\)*\\\Z", fmt):
        raise ValueError(f"bad log format {fmt!r}: trailing backslash")
    pieces = _FIELD.split(fmt)
    names: list[str] = []
    out = ["^"]
    bare = ["^"]
    for k, piece in enumerate(pieces):
        if k % 2 == 0:
            if "<" in piece:
                raise ValueError(f"bad log format {fmt!r}: unclosed '<' (write fields as <Name>)")
            out.append(re.sub(" +", r"\\s+", piece))
            bare.append(out[-1])
            continue
        name = piece[1:-1]
        if not _FIELD_NAME.match(name):
            raise ValueError(f"bad log format {fmt!r}: invalid field name {name!r}")
        names.append(name)
        out.append(f"(?P<{name}>.*?)")
        bare.append(out[-1] if name == "Content" else "(?:.*?)")
    out.append("$")
    bare.append("$")
    dupes = sorted({x for x in names if names.count(x) > 1})
    if dupes:
        raise ValueError(f"bad log format {fmt!r}: duplicate field(s) {', '.join(dupes)}")
    if "Content" not in names:
        raise ValueError(f"bad log format {fmt!r}: no <Content> field")
    try:
        pattern = LinearPattern("".join(out))
        content_pattern = LinearPattern("".join(bare))
    except _re2_error as exc:
        arg = exc.args[0] if exc.args else ""
        msg = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
        msg = msg.splitlines()[0] if msg.strip() else "syntax error"
        raise ValueError(
            f"bad log format {fmt!r}: the text between fields is not a valid RE2 regular "
            f"expression ({msg}); escape literal brackets as \\[ \\]"
        ) from None
    return HeaderFormat(fmt, tuple(names), pattern, content_pattern)


def _header_records(lines: Iterable[str], hf: HeaderFormat, fields: bool) -> Iterator[Record]:
    """Records of a loghub header format: one per line (unmatched lines keep the whole line)."""
    if not fields:
        content = hf.content
        for n, raw in enumerate(lines, start=1):
            c = content(raw)
            if c is None:
                yield Record(line=n, message=raw.rstrip("\r\n"), matched=False)
            else:
                yield Record(line=n, message=c)
        return
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        f = hf.match(line)
        if f is None:
            yield Record(line=n, message=line, matched=False)
            continue
        yield Record(
            line=n,
            message=f["Content"],
            matched=True,
            time=" ".join(f[k] for k in ("Date", "Day", "Time") if f.get(k)) or None,
            level=f.get("Level") or None,
            service=f.get("Component") or None,
            host=f.get("Node") or f.get("Host") or None,
        )


def iter_records(
    lines: Iterable[str],
    fmt: Detected | HeaderFormat | str,
    *,
    join: bool = True,
    fields: bool = True,
) -> Iterator[Record]:
    """Records of lines in a detected format or a loghub header format, streaming.

    With ``join`` (the default), a line that does not match the format and looks like a
    continuation (``is_continuation``) is appended, after a newline, to the event before it.
    ``fields=False`` skips the header fields of a loghub format (message only: faster).
    """
    if isinstance(fmt, str):
        fmt = compile_header_format(fmt)
    records = _header_records(lines, fmt, fields) if isinstance(fmt, HeaderFormat) else (
        iter_detected(lines, fmt)
    )
    if not join:
        yield from records
        return
    pending: Record | None = None
    in_trace = False
    for rec in records:
        if pending is not None and not rec.matched and is_continuation(rec.message, in_trace):
            pending.message = f"{pending.message}\n{rec.message}"
            pending.lines += 1
            in_trace = True
            continue
        if pending is not None:
            yield pending
        pending, in_trace = rec, False
    if pending is not None:
        yield pending


def parse_lines(
    lines: Iterable[str], fmt: Detected | HeaderFormat | str, *, join: bool = True
) -> list[Record]:
    """All records of lines (see iter_records)."""
    return list(iter_records(lines, fmt, join=join))


def read_contents(lines: Iterable[str], fmt: str | HeaderFormat) -> list[str]:
    """Return the message part of every line (the whole line when the header does not match)."""
    return [r.message for r in iter_records(lines, fmt, join=False, fields=False)]


def open_log(logfile: str) -> TextIO:
    """Open a log file for reading lines (ValueError naming the file if it cannot be read)."""
    if not os.path.isfile(logfile):
        raise ValueError(f"log file not found: {logfile}")
    try:
        # newline="\n": lines end at "\n" only (a lone "\r" stays inside its line)
        return open(logfile, encoding="utf-8", errors="replace", newline="\n")
    except OSError as exc:
        raise ValueError(f"cannot read log file {logfile}: {exc.strerror or exc}") from exc


def read_log_file(logfile: str, fmt: str | HeaderFormat) -> list[str]:
    """Read a log file and return the message part of each line, in order."""
    hf = fmt if isinstance(fmt, HeaderFormat) else compile_header_format(fmt)
    with open_log(logfile) as fh:
        return read_contents(fh, hf)


def read_log_records(
    logfile: str, fmt: str | HeaderFormat | None = None
) -> tuple[list[Record], Detected | HeaderFormat]:
    """Records of a log file and the format used: FMT (one record per line) or, without it,
    the format detected from the first lines (multi-line events joined)."""
    hf = compile_header_format(fmt) if isinstance(fmt, str) else fmt
    with open_log(logfile) as fh:
        if hf is not None:
            return list(iter_records(fh, hf, join=False, fields=False)), hf
        det = detect_format(fh)
        fh.seek(0)
        return list(iter_records(fh, det)), det


def describe_format(fmt: Detected | HeaderFormat, records: Sequence[Record]) -> str:
    """One line naming the format and how many lines it matched."""
    lines = sum(r.lines for r in records)
    matched = sum(r.lines for r in records if r.matched)
    name = f"loghub header {fmt.fmt!r}" if isinstance(fmt, HeaderFormat) else (
        f"detected {fmt.describe()}")
    joined = f", {len(records)} events" if len(records) != lines else ""
    return f"format: {name}; {matched} of {lines} lines matched{joined}"
