"""Personal data and secret redaction for text that lands in evidence, findings and reports.

Covered: emails (also internationalised and URL-encoded), IPv4 and IPv6 addresses, card
numbers (Luhn-valid, with space/dot/dash separators, also glued to words), JWTs, AWS access
key ids, `Bearer` tokens and key=secret pairs (password=, "db_password": ..., token: ...).

Log lines are untrusted and can be megabytes long, so every pattern runs in linear time:
columns go through Arrow's RE2 engine (linear by construction; no lookarounds there), and the
Python patterns used for single strings and for the checks RE2 cannot do (Luhn, IPv6 parsing)
are written so that no start position rescans a long run (bounded repeats, or a lookbehind
that only lets a run's first character start a match).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

__all__ = ["redact_text", "redact_series"]

_KEYS = (r"(?i)(password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
         r"secret[_-]?key|private[_-]?key|credentials?|auth)")
_PAIR_TAIL = r"([\"']?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"'}]+)"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)"


@dataclass(frozen=True)
class _Rule:
    re2: str  # the pattern for Arrow/RE2 (a prefilter when `fix` is set)
    py: re.Pattern[str]  # the same in Python's dialect, linear time
    repl: str = ""  # replacement (\1 groups) when fix is None
    fix: Callable[[re.Match[str]], str] | None = None  # checks RE2 cannot make


def _luhn(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "<card>" if 13 <= len(digits) <= 19 and _luhn(digits) else m.group(0)


def _ipv6(m: re.Match[str]) -> str:
    text = m.group(0)
    if text.count(":") < 2 or not any(c.isdigit() for c in text):
        return text
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    return "<ip>"


# Order matters: secrets first (a JWT or key=value may hold an email-like part), then emails
# before IPs (an IPv4 inside an email's domain is the email's).
_RULES = [
    _Rule(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}",
          re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\."
                     r"[A-Za-z0-9_-]{4,}"), "<jwt>"),
    _Rule(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}",
          re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2<secret>"),
    _Rule(_KEYS + _PAIR_TAIL, re.compile(_KEYS + _PAIR_TAIL), r"\1\2<secret>"),
    _Rule(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[A-Z0-9]{16}\b",
          re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[A-Z0-9]{16}\b"), "<aws-key>"),
    _Rule(r"[\p{L}\p{N}_.%+-]+(?:@|%40)[\p{L}\p{N}_-]+(?:\.[\p{L}\p{N}_-]+)+",
          re.compile(r"(?<![\w.%+-])[\w.%+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+"), "<email>"),
    # prefilter: every valid IPv6 text holds `::` or six `group:` in a row (eight groups, or
    # six and an IPv4 tail); a clock such as 18:25:44.525 holds neither
    _Rule(r"::|(?:[0-9A-Fa-f]{1,4}:){6}",
          re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|"
                     r"[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"), fix=_ipv6),
    _Rule(rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b",
          re.compile(rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b"), "<ip>"),
    _Rule(r"\d(?:[ .-]?\d){12,18}",
          re.compile(r"(?<!\d)(?:\d[ .-]?){12,18}\d(?!\d)"), fix=_card),
]


def redact_text(text: str) -> str:
    """Replace personal data and secrets with placeholders (<email>, <ip>, <card>, <secret>...)."""
    for rule in _RULES:
        text = rule.py.sub(rule.fix or rule.repl, text)
    return text


# one RE2 pass finds the rows any rule can touch (most log lines hold nothing to redact, and
# one combined scan costs less than one scan per rule); a row no rule matches is left as is
_ANY = "|".join(f"(?:{rule.re2})" for rule in _RULES)


def redact_series(values: pd.Series) -> pd.Series:
    """Vectorised redact_text over a string column (RE2 via Arrow; missing values kept)."""
    s = values.astype(pd.StringDtype("pyarrow"))
    hit = s.str.contains(_ANY, regex=True, na=False).to_numpy(bool)
    if not hit.any():
        return s
    part = s[hit]
    for rule in _RULES:
        if rule.fix is None:
            part = part.str.replace(rule.re2, rule.repl, regex=True)
            continue
        mask = part.str.contains(rule.re2, regex=True, na=False)
        if mask.any():
            part[mask] = part[mask].map(lambda x, r=rule: r.py.sub(r.fix, x))
    s[hit] = part.array  # by position: the index may repeat labels
    return s
