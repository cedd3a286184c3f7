"""Loghub header-format parsing and the `incident templates` command implementation."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class HeaderFormat:
    """A compiled loghub header format (strict and lenient regexes plus field names)."""

    fmt: str
    fields: tuple[str, ...]
    strict: re.Pattern[str]
    lenient: re.Pattern[str]

    def content(self, line: str) -> str | None:
        """Return the `<Content>` part of a line, or None if the line does not match."""
        line = line.rstrip("\r\n")
        text = line.strip()
        m = self.strict.match(text) or self.lenient.match(text)
        if m is None and text != line:
            m = self.strict.match(line) or self.lenient.match(line)
        return None if m is None else m.group("Content")


def _tokenize_format(fmt: str) -> list[tuple[str, str]]:
    """Split a header format into ('lit', text) and ('field', name) parts."""
    parts: list[tuple[str, str]] = []
    lit: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch == "\\":
            if i + 1 >= n:
                raise ValueError(f"bad log format {fmt!r}: trailing backslash")
            lit.append(fmt[i + 1])
            i += 2
        elif ch == "<":
            end = fmt.find(">", i + 1)
            if end < 0:
                raise ValueError(f"bad log format {fmt!r}: unclosed '<' at position {i}")
            name = fmt[i + 1 : end]
            if not _FIELD_NAME.match(name):
                raise ValueError(f"bad log format {fmt!r}: invalid field name {name!r}")
            if lit:
                parts.append(("lit", "".join(lit)))
                lit = []
            parts.append(("field", name))
            i = end + 1
        else:
            lit.append(ch)
            i += 1
    if lit:
        parts.append(("lit", "".join(lit)))
    return parts


def compile_header_format(fmt: str) -> HeaderFormat:
    """Compile loghub header notation (`<Field>` tokens, `<Content>` = rest) into regexes."""
    if not isinstance(fmt, str) or not fmt.strip():
        raise ValueError("bad log format: empty format string")
    parts = _tokenize_format(fmt)
    names = [v for k, v in parts if k == "field"]
    dupes = sorted({x for x in names if names.count(x) > 1})
    if dupes:
        raise ValueError(f"bad log format {fmt!r}: duplicate field(s) {', '.join(dupes)}")
    if "Content" not in names:
        raise ValueError(f"bad log format {fmt!r}: no <Content> field")

    def build(field_rx: str) -> re.Pattern[str]:
        out = ["^"]
        for idx, (kind, val) in enumerate(parts):
            if kind == "lit":
                # a run of spaces in the format matches any run of whitespace (loghub notation)
                for chunk in re.split(r"( +)", val):
                    if not chunk:
                        continue
                    out.append(r"\s+" if chunk[0] == " " else re.escape(chunk))
            elif val == "Content":
                last = idx == len(parts) - 1
                out.append(f"(?P<Content>{'.*' if last else '.*?'})")
            else:
                out.append(f"(?P<{val}>{field_rx})")
        out.append("$")
        return re.compile("".join(out), re.DOTALL)

    return HeaderFormat(fmt, tuple(names), build(r"\S+?"), build(r".+?"))


def read_contents(lines: Iterable[str], fmt: str | HeaderFormat) -> list[str]:
    """Return the message part of every line (the whole line when the header does not match)."""
    hf = fmt if isinstance(fmt, HeaderFormat) else compile_header_format(fmt)
    strict, content = hf.strict.match, hf.content
    out: list[str] = []
    append = out.append
    for raw in lines:
        line = raw.rstrip("\r\n")
        m = strict(line.strip())
        if m is not None:
            append(m.group("Content"))
        else:
            c = content(line)
            append(line if c is None else c)
    return out


def read_log_file(logfile: str, fmt: str | HeaderFormat) -> list[str]:
    """Read a log file and return the message part of each line, in order."""
    hf = fmt if isinstance(fmt, HeaderFormat) else compile_header_format(fmt)
    if not os.path.isfile(logfile):
        raise ValueError(f"log file not found: {logfile}")
    try:
        # newline="\n": lines end at "\n" only (a lone "\r" stays inside its line)
        with open(logfile, encoding="utf-8", errors="replace", newline="\n") as fh:
            return read_contents(fh, hf)
    except OSError as exc:
        raise ValueError(f"cannot read log file {logfile}: {exc.strerror or exc}") from exc






def group_accuracy(predicted: Sequence[object], truth: Sequence[object]) -> float:
    """Loghub group accuracy: share of lines whose predicted group equals their true group."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have the same length")
    if not predicted:
        return 1.0
    truth_sizes = Counter(truth)
    pred_groups: dict[object, list[int]] = {}
    for i, p in enumerate(predicted):
        pred_groups.setdefault(p, []).append(i)
    correct = 0
    for members in pred_groups.values():
        labels = {truth[i] for i in members}
        if len(labels) != 1:
            continue
        (label,) = labels
        if truth_sizes[label] == len(members):
            correct += len(members)
    return correct / len(predicted)
