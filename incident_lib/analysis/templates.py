"""Log template mining: generic masking, dedupe, then frequency-based variable detection.

How it works (one generic configuration for every log source):

1. Mask: in a single regex pass, words that are obviously values become ``<*>``: any word
   containing a digit (numbers, ids, IPs, versions, hex with digits), numbers with a size or
   duration unit ("16.0 KB", "5 ms"), long hex words, and true/false/null. A run of
   whitespace-separated ``<*>`` collapses into one (variable-length lists of ids).
2. Dedupe: identical masked messages share a cluster key (raw and masked caches are capped).
3. Cluster the distinct masked messages (weighted by line counts), per token count, Brain-style:
   each message's "root" is the set of its words sharing the most common column frequency;
   messages with the same root form a group. Inside a group a column is a variable if it
   already holds ``<*>`` or has at least ``threshold`` distinct words; columns with fewer
   distinct words, or whose words are all more frequent than the root, are constants and
   split the group.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

VAR = "<*>"

# Characters that separate words inside a whitespace token (key=value, host:port, f(x), a,b).
_D = r"\s,;:=()\[\]{}<>\"'|"
_UNITS = r"(?:[kKMGTP]i?B|B|bytes|ns|us|µs|ms|s|sec|secs|min|mins|h|hrs)"
_MASK = re.compile(
    rf"(?<![^{_D}])(?:"
    rf"[-+]?\d+(?:\.\d+)?\s?{_UNITS}(?![^{_D}])"  # quantity with unit
    rf"|(?:true|false|null|True|False|Null|TRUE|FALSE|NULL)(?![^{_D}])"
    rf"|[0-9a-fA-F]{{8,}}(?![^{_D}])"  # long hex word (with or without digits)
    rf"|[^{_D}\d]*\d[^{_D}]*"  # any word containing a digit
    r")"
)
_RUNS = re.compile(r"<\*>(?:\s+<\*>)+")
# mask() is invariant under changing ASCII digits, so the cache key maps them all to '0':
# lines that differ only in numbers share one cache entry and skip the regex.
_NORM = bytes.maketrans(b"123456789", b"000000000")

DEFAULT_THRESHOLD = 4
_CACHE_MAX = 131_072
_MAX_UNIQUE = 200_000


def template_id(template: str) -> str:
    """Stable id of a template text: 'T' + first 10 hex digits of its sha1."""
    return "T" + hashlib.sha1(template.encode("utf-8")).hexdigest()[:10]


def mask(message: str) -> str:
    """Replace value-looking words (digits, units, hex, booleans) of a message by '<*>'."""
    return _RUNS.sub(VAR, _MASK.sub(VAR, message))


def cluster_masked(
    masked: Sequence[str], weights: Sequence[int], threshold: int = DEFAULT_THRESHOLD
) -> list[str]:
    """Return the template text of each distinct masked message (weights = line counts)."""
    seqs = [m.split() for m in masked]
    out = [""] * len(seqs)
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(seqs):
        by_len[len(s)].append(i)
    for length, members in by_len.items():
        col_freq: list[Counter[str]] = [Counter() for _ in range(length)]
        for i in members:
            w = weights[i]
            for j, tok in enumerate(seqs[i]):
                col_freq[j][tok] += w
        roots: dict[tuple[tuple[int, str], ...], list[int]] = defaultdict(list)
        root_freq: dict[tuple[tuple[int, str], ...], int] = {}
        for i in members:
            s = seqs[i]
            freqs = [-1 if t == VAR else col_freq[j][t] for j, t in enumerate(s)]
            cnt = Counter(f for f in freqs if f >= 0)
            rf = max(cnt.items(), key=lambda kv: (kv[1], kv[0]))[0] if cnt else -1
            key = tuple((j, s[j]) for j in range(length) if freqs[j] == rf)
            roots[key].append(i)
            root_freq[key] = rf
        for key, grp in roots.items():
            _split_group(seqs, grp, {j for j, _ in key}, col_freq, root_freq[key], threshold, out)
    return out


def _split_group(
    seqs: list[list[str]],
    grp: list[int],
    fixed: set[int],
    col_freq: list[Counter[str]],
    rf: int,
    threshold: int,
    out: list[str],
) -> None:
    """Assign templates to one root group: mark variable columns, split on constant ones."""
    length = len(seqs[grp[0]])

    def is_var(j: int, vals: set[str]) -> bool | None:
        """True: variable column; False: constant column to split on; None: single value."""
        if len(vals) == 1:
            return None
        if VAR in vals:
            return True
        if all(col_freq[j][v] > rf for v in vals):  # words shared with other templates
            return False
        return len(vals) >= threshold

    top_var = set()
    for j in range(length):
        if j not in fixed and is_var(j, {seqs[i][j] for i in grp}):
            top_var.add(j)
    stack = [grp]
    while stack:
        g = stack.pop()
        split_col, best = -1, 0
        template = list(seqs[g[0]])
        for j in range(length):
            if j in fixed:
                continue
            if j in top_var:
                template[j] = VAR
                continue
            vals = {seqs[i][j] for i in g}
            verdict = is_var(j, vals)
            if verdict:
                template[j] = VAR
            elif verdict is False and (split_col < 0 or len(vals) < best):
                split_col, best = j, len(vals)
        if split_col >= 0:
            parts: dict[str, list[int]] = defaultdict(list)
            for i in g:
                parts[seqs[i][split_col]].append(i)
            stack.extend(reversed(list(parts.values())))
            continue
        text = " ".join(template)
        for i in g:
            out[i] = text


def _as_text(value: object) -> str:
    """Message text of a non-str value: '' for None/NaN, str() otherwise."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class TemplateMiner:
    """Streaming miner: add() returns a provisional cluster key, finish() the final mapping."""

    def __init__(self, threshold: int = DEFAULT_THRESHOLD, max_unique: int = _MAX_UNIQUE) -> None:
        """Create an empty miner (max_unique caps distinct masked messages kept in memory)."""
        self.threshold = threshold
        self.max_unique = max(2, max_unique)
        self._cache: dict[bytes, int] = {}  # digit-normalised message -> key (capped)
        self._index: dict[str, int] = {}  # masked message -> key (bounded by max_unique)
        self._masked: list[str | None] = []  # key -> masked text (None once compacted)
        self._weights: list[int] = []  # key -> line count while uncompacted
        self._alias: list[int] = []  # key -> key of the template it was compacted into
        # templates learnt by compaction: token count -> [(tokens, key)]
        self._learnt: dict[int, list[tuple[list[str], int]]] = defaultdict(list)

    def __len__(self) -> int:
        """Number of distinct masked messages currently held."""
        return len(self._index)

    def _new_key(self, masked: str, weight: int) -> int:
        k = len(self._masked)
        self._masked.append(masked)
        self._weights.append(weight)
        self._alias.append(k)
        return k

    def _miss(self, message: str, norm: bytes) -> int:
        """Key for a message whose normalised form is not cached."""
        m = _RUNS.sub(VAR, _MASK.sub(VAR, message))
        k = self._index.get(m)
        if k is None:
            k = self._match_learnt(m) if self._learnt else None
            if k is None:
                if len(self._index) >= self.max_unique:
                    self._compact()
                    k = self._match_learnt(m)
                if k is None:
                    k = self._new_key(m, 0)
                    self._index[m] = k
        cache = self._cache
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[norm] = k
        return k

    def add(self, message: str) -> int:
        """Add one message; return its provisional cluster key (an int)."""
        if not isinstance(message, str):
            message = _as_text(message)
        norm = message.encode("utf-8", "surrogatepass").translate(_NORM)
        k = self._cache.get(norm)
        if k is None:
            k = self._miss(message, norm)
        self._weights[k] += 1
        return k

    def add_many(self, messages: Iterable[str]) -> list[int]:
        """Add messages in order; return their provisional cluster keys."""
        get, miss, weights, tab = self._cache.get, self._miss, self._weights, _NORM
        keys = []
        append = keys.append
        for message in messages:
            try:
                norm = message.encode("utf-8", "surrogatepass").translate(tab)
            except AttributeError:  # not a str: None/NaN -> "", anything else -> str()
                message = _as_text(message)
                norm = message.encode("utf-8", "surrogatepass").translate(tab)
            k = get(norm)
            if k is None:
                k = miss(message, norm)
            weights[k] += 1
            append(k)
        return keys

    def _match_learnt(self, masked: str) -> int | None:
        toks = masked.split()
        for tmpl, key in self._learnt.get(len(toks), ()):
            if all(a == b or a == VAR for a, b in zip(tmpl, toks, strict=True)):
                return key
        return None

    def _live(self) -> tuple[list[int], list[str]]:
        """Keys and texts of everything to cluster: distinct masked messages and templates."""
        keys = list(self._index.values())
        keys.extend(key for lst in self._learnt.values() for _, key in lst)
        return keys, [self._masked[k] or "" for k in keys]

    def _compact(self) -> None:
        """Collapse distinct masked messages into their templates to bound memory."""
        keys, texts = self._live()
        tmpl = cluster_masked(texts, [self._weights[k] for k in keys], self.threshold)
        by_text: dict[str, int] = {}
        for k, t in zip(keys, tmpl, strict=True):
            tk = by_text.get(t)
            if tk is None:
                tk = by_text[t] = self._new_key(t, 0)
            self._weights[tk] += self._weights[k]
            self._weights[k] = 0
            self._masked[k] = None
            self._alias[k] = tk
        for k, t in enumerate(self._alias):  # keep aliases one hop deep
            self._alias[k] = self._alias[t]
        self._index.clear()
        self._cache.clear()
        self._learnt = defaultdict(list)
        for t, tk in sorted(by_text.items(), key=lambda kv: -self._weights[kv[1]]):
            self._learnt[len(t.split())].append((t.split(), tk))

    def finish(self) -> tuple[dict[int, str], dict[str, str]]:
        """Return ({cluster key: template id} for every key given out, {template id: text})."""
        keys, texts = self._live()
        tmpl = cluster_masked(texts, [self._weights[k] for k in keys], self.threshold)
        final = dict(zip(keys, tmpl, strict=True))
        mapping: dict[int, str] = {}
        templates: dict[str, str] = {}
        ids: dict[str, str] = {}
        for k, target in enumerate(self._alias):
            text = final.get(target)
            if text is None:
                continue
            tid = ids.get(text)
            if tid is None:
                tid = ids[text] = template_id(text)
                templates[tid] = text
            mapping[k] = tid
        return mapping, templates


def mine_templates(messages: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Mine templates; return (template id per message in order, {template_id: template})."""
    miner = TemplateMiner()
    keys = miner.add_many(messages)
    mapping, templates = miner.finish()
    return [mapping[k] for k in keys], templates
