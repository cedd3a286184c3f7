"""Linear-time regular expressions: Google RE2 patterns with a fast group extraction.

RE2 matches in time linear in the text for every pattern (no backtracking). google-re2's
`re`-like wrapper spends ~10x the matching time translating byte offsets to str offsets, so
`LinearPattern` calls its compiled binding directly and slices the UTF-8 bytes; if a future
google-re2 lacks that binding, the public API is used (same results, slower).
"""

from __future__ import annotations

import re2

__all__ = ["LinearPattern", "error"]

error = re2.error
_OPTIONS = re2.Options()
_OPTIONS.max_mem = 64 << 20  # room for long patterns; matching stays linear
_OPTIONS.log_errors = False  # a bad pattern is reported by the caller, not logged to stderr


class LinearPattern:
    """A compiled RE2 pattern; `groups(text)` returns the groups of the first match."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._rx = re2.compile(pattern, _OPTIONS)
        self.groupindex: dict[str, int] = dict(self._rx.groupindex)
        self._bound = getattr(self._rx, "_regexp", None)
        anchor = getattr(re2, "_Anchor", None)
        self._unanchored = getattr(anchor, "UNANCHORED", None)
        if self._unanchored is None:
            self._bound = None

    def groups(self, text: str) -> list[str | None] | None:
        """Group 1..n of the first match (None for a group that did not take part), or None.

        Raises UnicodeEncodeError for lone surrogates (callers treat it as no match).
        """
        if self._bound is None:
            m = self._rx.search(text)
            return None if m is None else list(m.groups())
        b = text.encode("utf-8")
        spans = self._bound.Match(self._unanchored, b, 0, len(b))
        if spans[0][0] < 0:
            return None
        return [None if s < 0 else b[s:e].decode("utf-8") for s, e in spans[1:]]

    def groupdict(self, text: str) -> dict[str, str | None] | None:
        """Named groups of the first match, or None."""
        g = self.groups(text)
        return None if g is None else {n: g[i - 1] for n, i in self.groupindex.items()}

    def findall(self, text: str) -> list[tuple[str, ...]]:
        """All non-overlapping matches' groups (public API; for short patterns)."""
        return self._rx.findall(text)
