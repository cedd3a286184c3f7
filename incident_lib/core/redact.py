"""Personal data redaction for log text that lands in evidence and reports."""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["redact_text", "redact_series"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_IPV4 = re.compile(r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


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


def redact_text(text: str) -> str:
    """Replace emails, IPv4 addresses and card-like numbers (Luhn-valid) with placeholders."""
    text = _EMAIL.sub("<email>", text)
    text = _IPV4.sub("<ip>", text)
    return _CARD.sub(_card, text)


def redact_series(values: pd.Series) -> pd.Series:
    """Vectorised redact_text over a string column (non-strings kept)."""
    s = values.astype("string")
    s = s.str.replace(_EMAIL.pattern, "<email>", regex=True)
    s = s.str.replace(_IPV4.pattern, "<ip>", regex=True)
    mask = s.str.contains(_CARD.pattern, regex=True, na=False)
    if mask.any():
        s[mask] = s[mask].map(lambda x: _CARD.sub(_card, x))
    return s
