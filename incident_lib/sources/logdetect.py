"""Recognise a common log format from a sample of lines and split lines into records.

Formats (tried in this order; the order is also the tie rule):
``docker-json`` (``{"log","stream","time"}``), ``json`` (one object per line), ``cri``
(containerd/CRI-O: time, stream, P/F tag, message; partial ``P`` lines are joined),
``rfc5424`` and ``rfc3164`` syslog (the latter also with the ISO time that rsyslog and
journald write), ``access-combined`` (nginx/Apache common or combined), ``klog`` (Go and
Kubernetes), ``python-logging`` (the ``LEVEL:name:message`` default), ``leveled`` (a timestamp,
then a level within the next few header tokens: logback/log4j and Spring Boot layouts, Python
``asctime`` layouts, Android logcat, Apache and nginx error logs), ``delimited`` (timestamp,
then a fixed number of ``|``- or tab-separated fields), ``logfmt``, else ``plain`` (the whole
line is the message).

Detection reads a sample (the first ``SAMPLE`` non-empty lines), counts for every format how
many sample lines it parses, and picks the format with the most; equal counts go to the
earlier format in the order above. A format must parse at least ``MIN_SHARE`` of the sample
lines that are not continuation lines, otherwise the result is ``plain``. For container
formats the messages inside are detected the same way (one level) and parsed with it.

Every pattern is RE2 (linear time), a one-character-class Python pattern or a single
left-to-right scan: no line can hang (tested with 10,000-character adversarial lines).

Over 400 lines on purpose: the catalogue of formats, their order (which is the tie rule) and
their parsers read side by side in one module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .linear_re import LinearPattern

__all__ = [
    "Detected", "Record", "detect_format", "iter_detected", "is_continuation", "FORMATS", "SAMPLE"
]

SAMPLE = 200
MIN_SHARE = 0.5


@dataclass
class Record:
    """One log event: its first line number, message, and the header fields found."""

    line: int
    message: str
    matched: bool = True
    time: str | None = None
    level: str | None = None
    service: str | None = None
    host: str | None = None
    status: str | None = None
    lines: int = 1


@dataclass(frozen=True)
class Detected:
    """A recognised format: name, sample lines it parsed, sample size, format parameters."""

    name: str
    matched: int
    sampled: int
    params: tuple[str, ...] = ()
    inner: Detected | None = field(default=None, compare=False)

    def describe(self) -> str:
        """One line for people: 'rfc3164 syslog (198 of 200 sample lines)'."""
        inner = f", messages inside: {self.inner.name}" if self.inner else ""
        return f"{self.name} ({self.matched} of {self.sampled} sample lines{inner})"


Fields = dict[str, str | None]

_LEVELS = {
    "trace", "debug", "info", "notice", "warn", "warning", "error", "err", "fatal",
    "critical", "crit", "severe", "alert", "emerg", "emergency", "fine", "finer", "finest",
    "config", "verbose",
}
_LETTER_LEVELS = set("VDIWEF")
_MONTHS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
_DAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

_RFC5424 = LinearPattern(
    r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) "
    r"(-|(?:\[(?:[^\]\\\"]|\\.|\"(?:[^\"\\]|\\.)*\")*\])+)(?: (.*))?$"
)
_RFC3164 = LinearPattern(
    r"^(?:<\d{1,3}>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) (\S+) "
    r"([^\s\[\]:]+)(?:\[(\d+)\])?: ?(.*)$"
)
_CRI = LinearPattern(r"^(\d{4}-\d\d-\d\dT\S+) (stdout|stderr) ([FP]) ?(.*)$")
_ACCESS = LinearPattern(
    r"^(\S+) \S+ \S+ \[([^\]]+)\] (\"(?:[^\"\\]|\\.)*\" (\d{3}) (?:\d+|-)(?: .*)?)$"
)
_KLOG = LinearPattern(r"^([IWEF])(\d{4} \d\d:\d\d:\d\d\.\d+)\s+\d+ ([^\s\]]+)\] ?(.*)$")
_PYDEFAULT = LinearPattern(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL):([^:\s]*):(.*)$")
_LOGFMT_PAIR = LinearPattern(r"(?:^|\s)([A-Za-z_][\w.\-/]*)=(\"(?:[^\"\\]|\\.)*\"|\S*)")
_DELIM_TS = LinearPattern(r"^\d[\d\-/:.,T+Z ]*$")


_JAVA_EXC = LinearPattern(r"^(?:[\w$]+\.)+[\w$]*(?:Exception|Error|Throwable)\b")
_PY_EXC = LinearPattern(r"^[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning)\b")


def is_continuation(line: str, in_trace: bool) -> bool:
    """True if a line that lacks a header continues the event before it (stack trace lines).

    Openers: an indented line, ``Traceback (most recent call last):``, ``Caused by:``, a
    qualified Java exception name, ``... N more``; inside a trace (``in_trace``) a Python
    exception line (``ValueError: x``) also belongs to it.
    """
    if not line:
        return False
    if line[0] in " \t":
        return True
    if line.startswith(("Traceback (most recent call last):", "Caused by:", "Suppressed:")):
        return True
    if line.startswith("...") and line.rstrip().endswith("more"):
        return True
    try:
        if _JAVA_EXC.groups(line) is not None:
            return True
        return in_trace and _PY_EXC.groups(line) is not None
    except UnicodeError:
        return False


def _rfc5424(line: str) -> Fields | None:
    m = _RFC5424.groups(line)
    if m is None:
        return None
    msg = m[7] or ""
    return {"time": m[1], "host": m[2], "service": m[3],
            "message": msg[1:] if msg.startswith("\ufeff") else msg}


def _rfc3164(line: str) -> Fields | None:
    m = _RFC3164.groups(line)
    if m is None:
        return None
    return {"time": m[0], "host": m[1], "service": m[2], "message": m[4]}


def _cri(line: str) -> Fields | None:
    m = _CRI.groups(line)
    if m is None:
        return None
    partial = "1" if m[2] == "P" else None
    return {"time": m[0], "message": m[3], "partial": partial}


def _access(line: str) -> Fields | None:
    m = _ACCESS.groups(line)
    if m is None:
        return None
    return {"time": m[1], "host": m[0], "status": m[3], "message": m[2]}


def _klog(line: str) -> Fields | None:
    m = _KLOG.groups(line)
    if m is None:
        return None
    return {"level": m[0], "time": m[1], "service": m[2], "message": m[3]}


def _pydefault(line: str) -> Fields | None:
    m = _PYDEFAULT.groups(line)
    if m is None:
        return None
    return {"level": m[0], "service": m[1], "message": m[2]}


_MSG_KEYS = ("message", "msg", "log", "MESSAGE", "@message", "text", "event")
_TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "t", "date", "datetime")
_LEVEL_KEYS = ("log.level", "level", "lvl", "severity", "levelname", "loglevel")
_SERVICE_KEYS = ("service.name", "service", "logger", "logger_name", "name", "app", "component")


def _first(obj: dict[str, object], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = obj.get(k)
        if v is None and "." in k:  # nested ECS objects: {"log": {"level": "info"}}
            head, _, tail = k.partition(".")
            sub = obj.get(head)
            v = sub.get(tail) if isinstance(sub, dict) else None
        if v is not None and not isinstance(v, dict | list):
            return str(v)
    return None


def _json_obj(line: str) -> dict[str, object] | None:
    s = line.strip()
    if not s.startswith("{"):
        return None
    try:
        obj = json.loads(s)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _json(line: str) -> Fields | None:
    obj = _json_obj(line)
    if obj is None:
        return None
    msg = _first(obj, _MSG_KEYS)
    if msg is None:  # no message key: the object itself, keys sorted, is the message
        msg = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return {"time": _first(obj, _TIME_KEYS), "level": _first(obj, _LEVEL_KEYS),
            "service": _first(obj, _SERVICE_KEYS), "message": msg}


def _docker(line: str) -> Fields | None:
    obj = _json_obj(line)
    if obj is None or not isinstance(obj.get("log"), str) or "stream" not in obj:
        return None
    return {"time": _first(obj, ("time",)), "message": str(obj["log"]).rstrip("\r\n")}


def _logfmt(line: str) -> Fields | None:
    pairs = {k: v for k, v in _LOGFMT_PAIR.findall(line)}
    if len(pairs) < 2:
        return None
    covered = sum(len(k) + len(v) + 1 for k, v in pairs.items())
    if covered < 0.6 * len(line.replace(" ", "")):
        return None

    def get(keys: tuple[str, ...]) -> str | None:
        for k in keys:
            if k in pairs:
                v = pairs[k]
                return v[1:-1].replace('\\"', '"') if v.startswith('"') else v
        return None

    return {"time": get(("time", "ts", "t", "timestamp")), "level": get(("level", "lvl")),
            "service": get(("logger", "component", "caller", "service")),
            "message": get(("msg", "message")) or line}


_WORD = re.compile(r"[^ \t]+")  # one character class, no backtracking
_TIME_WORD = re.compile(r"\d[\d\-/:.,T+Z]*")
_BRACKET_SCAN = 256  # header brackets are short; an unclosed '[' costs at most this much


def _bracket_end(line: str, i: int) -> int:
    """Index after the ']' closing the '[' at i (nesting counted, scan capped), or -1."""
    depth = 0
    for j in range(i, min(len(line), i + _BRACKET_SCAN)):
        c = line[j]
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def _tokens(line: str, limit: int = 14) -> list[tuple[int, int]]:
    """(start, end) of the first whitespace-separated tokens; a [bracket group] is one token."""
    out: list[tuple[int, int]] = []
    i = 0
    search = _WORD.search
    while len(out) < limit:
        m = search(line, i)
        if m is None:
            break
        a, b = m.span()
        if line[a] == "[":
            j = _bracket_end(line, a)
            if j > 0:
                b = j
        out.append((a, b))
        i = b
    return out


def _is_time_token(tok: str) -> bool:
    if tok.startswith("[") and tok.endswith("]"):
        inner = tok[1:-1].split()
        return bool(inner) and any(":" in t for t in inner) and all(
            _is_time_token(t) or t.lower() in _MONTHS | _DAYS for t in inner)
    return _TIME_WORD.fullmatch(tok) is not None or tok.lower() in _MONTHS


def _level_of(tok: str, after_number: bool) -> str | None:
    t = tok[1:-1] if tok.startswith("[") and tok.endswith("]") else tok.rstrip(":")
    t = t.rpartition(":")[2]  # Apache 2.4 writes [module:level]
    if t.lower() in _LEVELS:
        return t
    if after_number and t in _LETTER_LEVELS:
        return t
    return None


def _leveled(line: str) -> Fields | None:
    """Timestamp tokens, then header items (numbers, [brackets], '-', a name before '-'),
    a level, more header items, an optional 'component:' or 'component -', then the message."""
    toks = _tokens(line)
    words = [line[a:b] for a, b in toks]
    i, clock = 0, False
    while i < len(words) and i < 4 and _is_time_token(words[i]):
        if clock and words[i].isdigit():  # a number after the time of day: a pid, not time
            break
        clock = clock or ":" in words[i]
        i += 1
    if i == 0:
        return None
    time = line[toks[0][0]:toks[i - 1][1]]
    level = None
    service = None
    after_number = words[i - 1].isdigit()
    k = i
    while k < len(words) and k < i + 5:
        w = words[k]
        lv = _level_of(w, after_number)
        if lv is not None:
            level = lv
            k += 1
            break
        if w.isdigit() or w in {"-", "|", "---"} or w.startswith("["):
            after_number = w.isdigit()
        elif k + 1 < len(words) and words[k + 1] == "-":
            service = w
        else:
            return None
        k += 1
    if level is None:
        return None
    while k < len(words) and (words[k].isdigit() or words[k] in {"-", "|", "---"}
                              or (words[k].startswith("[") and words[k].endswith("]"))):
        k += 1
    if k < len(words):
        w = words[k]
        if w.endswith(":") and len(w) > 1:
            service, k = w[:-1], k + 1
        elif k + 1 < len(words) and words[k + 1] in {"-", ":"}:
            service, k = w, k + 2
    start = toks[k][0] if k < len(toks) else len(line)
    return {"time": time, "level": level, "service": service, "message": line[start:]}


def _delimited(line: str, params: tuple[str, ...]) -> Fields | None:
    sep, count = params[0], int(params[1])
    parts = line.split(sep, count)
    if len(parts) <= count or _DELIM_TS.groups(parts[0]) is None:
        return None
    return {"time": parts[0], "service": parts[1] if count > 1 else None, "message": parts[-1]}


def _delimited_params(sample: list[str]) -> tuple[str, ...]:
    """Separator and header-field count (the fewest separators on a timestamp-led line)."""
    for sep in ("|", "\t"):
        counts = [ln.count(sep) for ln in sample
                  if ln.count(sep) >= 2 and _DELIM_TS.groups(ln.split(sep, 1)[0]) is not None]
        if len(counts) >= MIN_SHARE * len(sample):
            return (sep, str(min(counts)))
    return ("|", "1000000")


_Parser = Callable[[str], Fields | None]
FORMATS: dict[str, _Parser] = {
    "docker-json": _docker,
    "json": _json,
    "cri": _cri,
    "rfc5424": _rfc5424,
    "rfc3164": _rfc3164,
    "access-combined": _access,
    "klog": _klog,
    "python-logging": _pydefault,
    "leveled": _leveled,
    "delimited": lambda line: None,  # needs parameters: see _parser_for
    "logfmt": _logfmt,
}
_CONTAINERS = {"docker-json", "cri"}


def _parser_for(det: Detected) -> _Parser | None:
    if det.name == "delimited":
        return lambda line: _delimited(line, det.params)
    return FORMATS.get(det.name)


def _safe(parse: _Parser, line: str) -> Fields | None:
    try:
        return parse(line)
    except UnicodeError:  # lone surrogates cannot reach RE2
        return None


def detect_format(lines: Iterable[str], *, inner: bool = True) -> Detected:
    """Recognise the format of a sample of lines (see the module docstring for the rules)."""
    sample: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line.strip():
            sample.append(line)
            if len(sample) >= SAMPLE:
                break
    if not sample:
        return Detected("plain", 0, 0)
    heads = [ln for ln in sample if not is_continuation(ln, False)] or sample
    best = Detected("plain", len(sample), len(sample))
    top = 0
    for name in FORMATS:
        params = _delimited_params(heads) if name == "delimited" else ()
        parse = _parser_for(Detected(name, 0, 0, params))
        assert parse is not None
        hits = sum(1 for ln in sample if _safe(parse, ln) is not None)
        if hits > top:
            top, best = hits, Detected(name, hits, len(sample), params)
    if top < MIN_SHARE * len(heads):
        return Detected("plain", len(sample), len(sample))
    if inner and best.name in _CONTAINERS:
        parse = _parser_for(best)
        assert parse is not None
        msgs = [str(f["message"]) for ln in sample if (f := _safe(parse, ln)) is not None]
        sub = detect_format(msgs, inner=False)
        if sub.name != "plain":
            best = Detected(best.name, best.matched, best.sampled, best.params, sub)
    return best


def _record(n: int, f: Fields) -> Record:
    return Record(line=n, message=f.get("message") or "", time=f.get("time"),
                  level=f.get("level"), service=f.get("service"), host=f.get("host"),
                  status=f.get("status"))


def iter_detected(lines: Iterable[str], det: Detected) -> Iterator[Record]:
    """Records of lines in a detected format, one per line (CRI partial lines joined)."""
    parse = _parser_for(det)
    inner = _parser_for(det.inner) if det.inner is not None else None
    partial: Record | None = None
    keep_spaces = det.name in _CONTAINERS  # a CRI partial line may end inside a message
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n") if keep_spaces else raw.rstrip()
        f = _safe(parse, line) if parse is not None else {"message": line}
        if f is None:
            if partial is not None:
                yield partial
                partial = None
            yield Record(line=n, message=line, matched=False)
            continue
        if partial is not None:  # CRI: P lines are pieces of one line, ended by an F line
            partial.message += f.get("message") or ""
            partial.lines += 1
            if f.get("partial"):
                continue
            rec, partial = partial, None
        else:
            rec = _record(n, f)
            if f.get("partial"):
                partial = rec
                continue
        if inner is not None:
            g = _safe(inner, rec.message)
            if g is None:  # the message inside lacks the inner header: maybe a continuation
                rec.matched = False
            else:
                rec.message = g.get("message") or ""
                rec.level = g.get("level") or rec.level
                rec.service = g.get("service") or rec.service
                rec.host = g.get("host") or rec.host
                rec.status = g.get("status") or rec.status
        yield rec
    if partial is not None:
        yield partial
