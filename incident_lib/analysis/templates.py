"""Log template mining: generic masking, dedupe, then frequency-based variable detection.

How it works (one generic configuration for every log source):

1. Mask: in a single regex pass, words that are obviously values become ``<*>``: any word
   containing a digit (numbers, ids, IPs, versions, hex with digits), numbers with a size or
   duration unit ("16.0 KB", "5 ms"), times of day ("00:02", "12:34:56.789"), dates written
   with month names ("Sun Jul 24 02:38:23 2005", "Dec 4, 2025"), long hex words, and
   true/false/null. A run of whitespace-separated
   ``<*>`` words collapses into one (variable-length lists of ids); a ``key=<*>`` value is
   not part of a run, so the key's word stays apart from the words after it.
2. Dedupe: identical masked messages share a cluster key (raw and masked caches are capped).
3. Cluster the distinct masked messages (weighted by line counts), per token count, Brain-style.
   Tokens are whitespace-separated words, except that a "quoted string" or a (parenthesised
   group) is one token (such a value keeps the message length whatever its word count).
   Each message's "root" is the set of its words sharing the most common column frequency;
   messages with the same root form a group. Inside a group a column is a variable if it
   already holds ``<*>``, has at least ``threshold`` distinct words, or holds ``key=value``
   words of one key with at least ``kv_threshold`` distinct values (written ``key=<*>``);
   columns with fewer distinct words, or whose words are all more frequent than the root, are
   constants and split the group (``key=value`` words by key first, so their values are
   judged inside each key). Templates that differ only in the number of adjacent variables
   ("a <*> b", "a <*> <*> b": one variable spanning a varying number of words) are merged.
   Before that, the leading tokens that most lines share, when they hold a per-line value
   and those lines go on in more than one shape (a logger's context such as
   "TraceID: <*> SpanID: <*>"), are set aside and
   what follows is clustered: each of their templates starts with them; the lines without
   them are clustered on their own (context_prefix).

One configuration for every source: kv_threshold 2 is what every fold of a leave-one-system-out
protocol on loghub picks; threshold 4 is kept (the folds pick 3, but thresholds 3 to 6 differ
by at most 0.003 in mean GA, and 4 keeps the demo's templates): benchmarks/loghub_eval.py.
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
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?"
_MASK = re.compile(
    rf"(?<![^{_D}])(?:"
    # a date written with a month name: [Day] Month DD [YYYY] [HH:MM[:SS]] [YYYY]
    rf"(?=[ADFJMNOSTW])(?:{_DAY}\s+)?{_MONTH}\s+\d{{1,2}}(?:,?\s+\d{{4}})?(?:\s+\d\d?:\d\d(?::\d\d)?)?"
    rf"(?:\s+\d{{4}})?(?![^{_D}])"
    rf"|\d{{1,2}}:\d\d(?::\d\d)?(?:[.,]\d+)?(?![^{_D}])"  # a time of day: one variable
    rf"|[-+]?\d+(?:\.\d+)?\s?{_UNITS}(?![^{_D}])"  # quantity with unit
    rf"|(?:true|false|null|True|False|Null|TRUE|FALSE|NULL)(?![^{_D}])"
    rf"|[0-9a-fA-F]{{8,}}(?![^{_D}])"  # long hex word (with or without digits)
    rf"|[^{_D}\d]*\d[^{_D}]*"  # any word containing a digit
    r")"
)
_RUNS = re.compile(r"(?<!\S)<\*>(?:\s+<\*>)+")
# clustering tokens: whitespace-separated words, but a "quoted string" or a (group) (with a
# key= prefix or trailing comma) is one token, so such a value of any word count keeps the
# length
_TOKEN = re.compile(r'[^\s"(]*"[^"\n]*"[^\s"]*|[^\s"(]*\([^()"\n]*\)\S*|\S+')
# mask() is invariant under changing ASCII digits, so the cache key maps them all to '0':
# lines that differ only in numbers share one cache entry and skip the regex.
_NORM = bytes.maketrans(b"123456789", b"000000000")

MAX_PREFIX = 16  # tokens: a logger's context is a handful ("<*> TraceID: <*> SpanID: <*>")
DEFAULT_THRESHOLD = 4
DEFAULT_KV_THRESHOLD = 2
_CACHE_MAX = 131_072
_MAX_UNIQUE = 200_000


def template_id(template: str) -> str:
    """Stable id of a template text: 'T' + first 10 hex digits of its sha1."""
    return "T" + hashlib.sha1(template.encode("utf-8")).hexdigest()[:10]


def tokens(masked: str) -> list[str]:
    """Clustering tokens of a masked message ("quoted string", (group): one token each)."""
    return _TOKEN.findall(masked) if '"' in masked or "(" in masked else masked.split()


def mask(message: str) -> str:
    """Replace value-looking words (digits, units, hex, booleans) of a message by '<*>'."""
    return _RUNS.sub(VAR, _MASK.sub(VAR, message))


def cluster_masked(
    masked: Sequence[str],
    weights: Sequence[int],
    threshold: int = DEFAULT_THRESHOLD,
    kv_threshold: int = DEFAULT_KV_THRESHOLD,
) -> list[str]:
    """Return the template text of each distinct masked message (weights = line counts)."""
    seqs = [tokens(m) for m in masked]
    head, inside = context_prefix(seqs, weights)
    if head:  # the lines with the prefix are mined after it, the others on their own
        out = [""] * len(seqs)
        ins = [i for i in range(len(seqs)) if inside[i]]
        outs = [i for i in range(len(seqs)) if not inside[i]]
        k, text = len(head), " ".join(head)
        rest = cluster_masked([" ".join(seqs[i][k:]) for i in ins], [weights[i] for i in ins],
                              threshold, kv_threshold)
        for i, t in zip(ins, rest, strict=True):
            out[i] = f"{text} {t}" if t else text
        if outs:
            other = cluster_masked([masked[i] for i in outs], [weights[i] for i in outs],
                                   threshold, kv_threshold)
            for i, t in zip(outs, other, strict=True):
                out[i] = t
        return out
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
            _split_group(seqs, grp, {j for j, _ in key}, col_freq, root_freq[key],
                         (threshold, kv_threshold), out)
    return _merge_runs(out)


def context_prefix(seqs: Sequence[Sequence[str]], weights: Sequence[int]
                   ) -> tuple[tuple[str, ...], list[bool]]:
    """The leading tokens that most lines (more than half, by line count) share, and which
    messages have them, when they hold a value that changes from line to line and those
    messages go on in more than one shape: a context a logger writes before every event,
    such as "TraceID: <*> SpanID: <*>" or "[req <*>]" (a background thread without the
    context writes lines without it). Its words are in every template of those messages and
    tell no event from another; left in, they would be the largest set of equally frequent
    words of every event whose own words are reused by other events, and those events would
    become one template of variables. Shared words without a value are the event itself
    ("Starting scheduled job <*>", "(root) CMD (<*>)"), and so are shared words before one
    shape only, or more than MAX_PREFIX of them (a sentence, not a context; this also bounds
    the scan on lines that share thousands of words): no prefix then, nor for fewer than two
    distinct messages."""
    n = len(seqs)
    total = sum(weights)
    members = list(range(n))
    head: list[str] = []
    while n > 1:
        k = len(head)
        count: Counter[str] = Counter()
        for i in members:
            if len(seqs[i]) > k:
                count[seqs[i][k]] += weights[i]
        if not count:
            break
        tok, w = count.most_common(1)[0]
        if 2 * w <= total:
            break
        if k == MAX_PREFIX:  # longer than any logger's context: words of the event
            return (), [False] * n
        members = [i for i in members if len(seqs[i]) > k and seqs[i][k] == tok]
        head.append(tok)
    if (not any(VAR in t for t in head) or len(members) < 2
            or len({len(seqs[i]) for i in members}) < 2):
        return (), [False] * n
    inside = [False] * n
    for i in members:
        inside[i] = True
    return tuple(head), inside


def _merge_runs(texts: list[str]) -> list[str]:
    """Templates that differ only in how many adjacent variables they have ('a <*> b' and
    'a <*> <*> b': a variable spanning a varying number of words) become one; others keep
    their text (and so their template id)."""
    forms: dict[str, set[str]] = defaultdict(set)
    for t in set(texts):
        if VAR in t:
            forms[_RUNS.sub(VAR, t)].add(t)
    merged = {t: form for form, ts in forms.items() if len(ts) > 1 for t in ts}
    return [merged.get(t, t) for t in texts] if merged else texts


def _split_group(
    seqs: list[list[str]],
    grp: list[int],
    fixed: set[int],
    col_freq: list[Counter[str]],
    rf: int,
    thresholds: tuple[int, int],
    out: list[str],
) -> None:
    """Assign templates to one root group: mark variable columns, split on constant ones."""
    length = len(seqs[grp[0]])
    threshold, kv_threshold = thresholds

    def is_var(j: int, vals: set[str]) -> bool | None:
        """True: variable column; False: constant column to split on; None: single value."""
        if len(vals) == 1:
            return None
        if VAR in vals:
            return True
        if all(col_freq[j][v] > rf for v in vals):  # words shared with other templates
            return False
        if len(vals) >= kv_threshold and _same_key(vals):
            return True
        return len(vals) >= threshold

    top_var: dict[int, str] = {}
    for j in range(length):
        vals = {seqs[i][j] for i in grp}
        if j not in fixed and is_var(j, vals):
            top_var[j] = _var_text(vals)
    stack = [grp]
    while stack:
        g = stack.pop()
        split_col, best = -1, 0
        template = list(seqs[g[0]])
        for j in range(length):
            if j in fixed:
                continue
            if j in top_var:
                template[j] = top_var[j]
                continue
            vals = {seqs[i][j] for i in g}
            verdict = is_var(j, vals)
            if verdict:
                template[j] = _var_text(vals)
            elif verdict is False and (split_col < 0 or len(vals) < best):
                split_col, best = j, len(vals)
        if split_col >= 0:
            parts: dict[str, list[int]] = defaultdict(list)
            for i in g:  # key=value words split by key first (their values judged inside)
                parts[_key_of(seqs[i][split_col])].append(i)
            if len(parts) == 1:
                parts = defaultdict(list)
                for i in g:
                    parts[seqs[i][split_col]].append(i)
            stack.extend(reversed(list(parts.values())))
            continue
        text = " ".join(template)
        for i in g:
            out[i] = text


def _key_of(word: str) -> str:
    """'key=' of a key=value word (non-empty key), else the word itself."""
    key, eq, _ = word.partition("=")
    return key + eq if key and eq else word


def _var_text(vals: set[str]) -> str:
    """Template text of a variable column: 'key=<*>' when all words share one key."""
    if not _same_key(vals):
        return VAR
    head = next(iter(vals)).partition("=")[0] + "="
    rests = [v[len(head):] for v in vals]
    if all(r[:1] == '"' for r in rests):
        head, rests = head + '"', [r[1:] for r in rests]
    tail = ""  # common trailing punctuation: tag="a b", -> tag="<*>",
    while all(len(r) > len(tail) and not r[-1 - len(tail)].isalnum() for r in rests) and len(
        {r[len(r) - len(tail) - 1] for r in rests}
    ) == 1:
        tail = rests[0][len(rests[0]) - len(tail) - 1] + tail
    return head + VAR + tail


def _same_key(vals: set[str]) -> bool:
    """True if every word is `key=value` with one and the same non-empty key."""
    keys = {v.partition("=")[0] if "=" in v else None for v in vals}
    return len(keys) == 1 and bool(next(iter(keys)))


def _as_text(value: object) -> str:
    """Message text of a non-str value: '' for None/NaN, str() otherwise."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class TemplateMiner:
    """Streaming miner: add() returns a provisional cluster key, finish() the final mapping."""

    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        max_unique: int = _MAX_UNIQUE,
        kv_threshold: int = DEFAULT_KV_THRESHOLD,
    ) -> None:
        """Create an empty miner (max_unique caps distinct masked messages kept in memory)."""
        self.threshold = threshold
        self.kv_threshold = kv_threshold
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
        toks = tokens(masked)
        for tmpl, key in self._learnt.get(len(toks), ()):
            if all(a == b or a == VAR or (a.endswith("=" + VAR) and b.startswith(a[:-3]))
                   for a, b in zip(tmpl, toks, strict=True)):
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
        tmpl = cluster_masked(texts, [self._weights[k] for k in keys], self.threshold,
                              self.kv_threshold)
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
            toks = tokens(t)
            self._learnt[len(toks)].append((toks, tk))

    def finish(self) -> tuple[dict[int, str], dict[str, str]]:
        """Return ({cluster key: template id} for every key given out, {template id: text})."""
        keys, texts = self._live()
        tmpl = cluster_masked(texts, [self._weights[k] for k in keys], self.threshold,
                              self.kv_threshold)
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


def mine_templates(messages: Sequence[str], groups: Sequence[object] | None = None
                   ) -> tuple[list[str], dict[str, str]]:
    """Mine templates; return (template id per message in order, {template_id: template}).

    groups (one label per message, e.g. its service) mines each group's messages apart: every
    service has its own log statements and line shapes, and mined together the lines of one
    service change which words of another's look constant. A template id is the hash of its
    text, so the same template in two groups keeps one id."""
    if groups is None:
        miner = TemplateMiner()
        keys = miner.add_many(messages)
        mapping, templates = miner.finish()
        return [mapping[k] for k in keys], templates
    if len(groups) != len(messages):
        raise ValueError(f"groups has {len(groups)} labels for {len(messages)} messages")
    members: dict[object, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    ids: list[str] = [""] * len(messages)
    texts: dict[str, str] = {}
    for idx in members.values():
        part, found = mine_templates([messages[i] for i in idx])
        for i, t in zip(idx, part, strict=True):
            ids[i] = t
        texts.update(found)
    return ids, texts
