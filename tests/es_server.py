"""A loopback Elasticsearch test double: the wire API the connector uses, with fault modes.

Speaks `/`, `_search` (bool/range/term/terms/exists/match_all/function_score+random_score;
date_histogram/terms/missing/filters aggregations; sort, search_after, _source, track_total_hits),
point-in-time open/close and `_bulk`, evaluated on in-memory columns. Every answer carries
`X-Elastic-Product: Elasticsearch`. Faults: HTTP status codes, slow answers, failed shards,
timed_out, expired point-in-time, and an 8.x server that refuses the 9.x client.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

__all__ = ["EsServer", "Fault"]

DATE_FIELDS = ("@timestamp",)
SHARDS = 2  # documents are spread over 2 virtual shards by position (for shard failures)


class EsError(Exception):
    """An error answer: HTTP status, ES error type and reason."""

    def __init__(self, status: int, etype: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.etype, self.reason = status, etype, reason

    def body(self) -> dict[str, Any]:
        """The JSON body Elasticsearch sends with an error."""
        err = {"type": self.etype, "reason": self.reason}
        return {"error": {"root_cause": [err], **err}, "status": self.status}


class Index:
    """One index: documents as columns (appended by _bulk, frozen into arrays on search)."""

    def __init__(self, name: str, number: int) -> None:
        self.name, self.number = name, number
        self.rows: list[dict[str, Any]] = []
        self.cols: dict[str, np.ndarray] = {}
        self.nested: set[str] = set()  # dotted fields that arrived as nested objects
        self.n = 0

    def add(self, docs: list[dict[str, Any]]) -> None:
        """Append documents (sources); nested objects are indexed under dotted names."""
        for d in docs:
            flat: dict[str, Any] = {}
            _flatten(d, "", flat, self.nested)
            self.rows.append(flat)

    def add_frame(self, df: pd.DataFrame) -> None:
        """Bulk-load columns directly (benchmarks); same result as _bulk of the rows."""
        self.freeze()
        for c in df.columns:
            old = self.cols.get(c)
            new = _column(c, df[c].tolist())
            self.cols[c] = new if old is None else np.concatenate([old, new])
        for c in list(self.cols):
            if c not in df.columns:
                self.cols[c] = np.concatenate([self.cols[c], _column(c, [None] * len(df))])
        self.n += len(df)

    def load_ndjson(self, path: str) -> None:
        """Bulk-load an NDJSON file straight into columns (benchmarks; same as _bulk of it)."""
        import pyarrow as pa
        import pyarrow.json as pj

        opts = pj.ParseOptions(explicit_schema=pa.schema(
            [(f, pa.timestamp("ms", tz="UTC")) for f in DATE_FIELDS]),
            unexpected_field_behavior="infer")
        table = pj.read_json(path, parse_options=opts,
                             read_options=pj.ReadOptions(block_size=1 << 24))
        self.freeze()
        assert self.n == 0, "load_ndjson only into an empty index"
        for name in table.column_names:
            col = table.column(name)
            if name in DATE_FIELDS:
                arr = col.cast(pa.int64()).to_numpy()
            elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
                arr = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
            else:
                arr = np.array(col.to_pylist(), dtype=object)
            self.cols[name] = arr
        self.n = table.num_rows

    def freeze(self) -> None:
        """Turn pending rows into column arrays."""
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        keys = set(self.cols) | {k for r in rows for k in r}
        for k in keys:
            new = _column(k, [r.get(k) for r in rows])
            old = self.cols.get(k)
            if old is None:
                old = _column(k, [None] * self.n)
            self.cols[k] = np.concatenate([old, new]) if self.n else new
        self.n += len(rows)

    def col(self, name: str) -> np.ndarray:
        """A field's values (None / NaN where missing)."""
        if name in self.cols:
            return self.cols[name]
        return np.full(self.n, None, dtype=object)


def _flatten(doc: dict[str, Any], prefix: str, out: dict[str, Any], nested: set[str]) -> None:
    for k, v in doc.items():
        if isinstance(v, dict):
            _flatten(v, f"{prefix}{k}.", out, nested)
        else:
            out[prefix + k] = v
            if prefix:
                nested.add(prefix + k)


def _column(name: str, values: list[Any]) -> np.ndarray:
    if name in DATE_FIELDS:
        ts = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
        return ts.dt.as_unit("ms").astype("int64").to_numpy() if len(values) else np.array(
            [], dtype=np.int64)
    if values and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                      for v in values) and any(v is not None for v in values):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    return np.array(values, dtype=object)


def _missing(a: np.ndarray) -> np.ndarray:
    if a.dtype == object:
        return np.array([v is None for v in a], dtype=bool) if len(a) else np.zeros(0, bool)
    if a.dtype.kind == "f":
        return np.isnan(a)
    return np.zeros(len(a), dtype=bool)


def _to_ms(v: Any, fmt: str | None) -> float:
    if isinstance(v, int | float) or (fmt == "epoch_millis" and str(v).lstrip("-").isdigit()):
        return float(v)
    return float(pd.Timestamp(v).value // 1_000_000)


def _interval_ms(s: str) -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", s)
    if not m:
        raise EsError(400, "illegal_argument_exception", f"bad interval {s}")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000,
                              "d": 86_400_000}[m.group(2)]


def _key(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


@dataclass
class Fault:
    """A fault injected into matching requests: `kind` and how many times (None: always)."""

    kind: str  # status | slow | partial | timed_out | expire_pit
    times: int | None = 1
    status: int = 500
    seconds: float = 0.0
    path: str = "_search"  # substring of the request path the fault applies to ("/": root)


@dataclass
class Pit:
    """An open point-in-time: a snapshot of document counts and a cache of sorted orders."""

    indices: list[tuple[Index, int]]
    keep_alive_until: float
    cache: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Evaluates the query and aggregation subset on the in-memory indices."""

    def __init__(self) -> None:
        self.indices: dict[str, Index] = {}
        self.pits: dict[str, Pit] = {}
        self.lock = threading.Lock()

    def index(self, name: str) -> Index:
        """The index, created on first use."""
        if name not in self.indices:
            self.indices[name] = Index(name, len(self.indices))
        return self.indices[name]

    def resolve(self, expr: str) -> list[tuple[Index, int]]:
        """Indices matching a comma-separated list of names or patterns, with their sizes."""
        out = []
        for part in expr.split(","):
            for name in sorted(self.indices):
                if fnmatch.fnmatchcase(name, part) and self.indices[name] not in [
                        i for i, _ in out]:
                    ix = self.indices[name]
                    ix.freeze()
                    out.append((ix, ix.n))
        if not out and not any(c in expr for c in "*?"):
            raise EsError(404, "index_not_found_exception", f"no such index [{expr}]")
        return out

    # -- queries ---------------------------------------------------------------------------
    def mask(self, ix: Index, n: int, q: dict[str, Any] | None) -> np.ndarray:
        """Which of the first n documents match query q."""
        if not q or "match_all" in q:
            return np.ones(n, dtype=bool)
        (kind, body), = q.items()
        if kind == "bool":
            m = np.ones(n, dtype=bool)
            for key in ("filter", "must"):
                for sub in _list(body.get(key)):
                    m &= self.mask(ix, n, sub)
            for sub in _list(body.get("must_not")):
                m &= ~self.mask(ix, n, sub)
            should = _list(body.get("should"))
            if should:
                hits = sum(self.mask(ix, n, s).astype(int) for s in should)
                m &= hits >= int(body.get("minimum_should_match", 1))
            return m
        if kind == "range":
            (f, b), = body.items()
            a = ix.col(f)[:n]
            if a.dtype == object:
                raise EsError(400, "search_phase_execution_exception", f"range on text {f}")
            m = ~_missing(a)
            fmt = b.get("format")
            for op, fn in (("gte", np.greater_equal), ("gt", np.greater),
                           ("lte", np.less_equal), ("lt", np.less)):
                if op in b:
                    m &= fn(a, _to_ms(b[op], fmt) if f in DATE_FIELDS else float(b[op]))
            return m
        if kind in ("term", "terms"):
            (f, v), = ((k, v) for k, v in body.items() if k != "boost")
            vals = [v.get("value")] if isinstance(v, dict) else (v if kind == "terms" else [v])
            a = ix.col(f)[:n]
            if a.dtype == object:
                return np.isin(a, np.array([str(x) for x in vals], dtype=object))
            return np.isin(a, [float(x) for x in vals])
        if kind == "exists":
            return ~_missing(ix.col(body["field"])[:n])
        if kind == "function_score":
            return self.mask(ix, n, body.get("query"))
        if kind in ("query_string", "simple_query_string"):
            raise EsError(400, "illegal_argument_exception", "query_string is not supported here")
        raise EsError(400, "parsing_exception", f"unknown query [{kind}]")

    @staticmethod
    def score(ix: Index, n: int, q: dict[str, Any] | None) -> np.ndarray:
        """random_score of a function_score query (uniform, seeded), else 1.0."""
        fs = (q or {}).get("function_score")
        if not fs or "random_score" not in fs:
            return np.ones(n)
        seed = np.uint64(int(fs["random_score"].get("seed", 0)) & 0xFFFFFFFF)
        x = np.arange(n, dtype=np.uint64) + np.uint64(ix.number) * np.uint64(1 << 40)
        with np.errstate(over="ignore"):
            x = x + seed * np.uint64(0x9E3779B97F4A7C15)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x = x ^ (x >> np.uint64(31))
        return (x >> np.uint64(11)).astype(float) / float(1 << 53)

    # -- search ----------------------------------------------------------------------------
    def search(self, targets: list[tuple[Index, int]], body: dict[str, Any],
               skip_shard: int | None, pit: Pit | None) -> dict[str, Any]:
        """A search answer: hits (sorted, paged) and aggregations."""
        t0 = time.monotonic()
        q = body.get("query")
        parts = []
        for ix, n in targets:
            m = self.mask(ix, n, q)
            if skip_shard is not None:
                m &= (np.arange(n) % SHARDS) != skip_shard
            parts.append((ix, np.flatnonzero(m)))
        total = int(sum(len(p) for _, p in parts))
        size = int(body.get("size", 10))
        if size > 10_000:
            raise EsError(400, "illegal_argument_exception", "Result window is too large")
        out: dict[str, Any] = {"hits": {"total": {"value": total, "relation": "eq"},
                                        "max_score": None, "hits": []}}
        if size:
            out["hits"]["hits"] = self._hits(parts, body, size, pit, skip_shard)
        if body.get("aggs") or body.get("aggregations"):
            out["aggregations"] = self.aggs(parts, body.get("aggs") or body["aggregations"])
        out["took"] = int((time.monotonic() - t0) * 1000)
        return out

    def _hits(self, parts: list[tuple[Index, np.ndarray]], body: dict[str, Any], size: int,
              pit: Pit | None, skip: int | None) -> list[dict[str, Any]]:
        sort = _sort_spec(body.get("sort"))
        ckey = json.dumps([body.get("query"), sort, skip], sort_keys=True)
        cached = pit.cache.get(ckey) if pit else None
        if cached is None:
            prim, docs, owners = [], [], []
            for ix, pos in parts:
                f, order, fmt = sort[0]
                if f == "_score":
                    v = self.score(ix, int(pos.max()) + 1 if len(pos) else 0,
                                   body.get("query"))[pos] if len(pos) else np.zeros(0)
                elif f in ("_shard_doc", "_doc"):
                    v = np.zeros(len(pos))
                else:
                    v = ix.col(f)[pos].astype(float)
                prim.append(-v if order == "desc" else v)
                docs.append((np.int64(ix.number) << np.int64(32)) + pos.astype(np.int64))
                owners.append(np.full(len(pos), ix.number))
            p = np.concatenate(prim) if prim else np.zeros(0)
            d = np.concatenate(docs) if docs else np.zeros(0, np.int64)
            order_idx = np.lexsort((d, p))
            cached = (p[order_idx], d[order_idx])
            if pit:
                pit.cache[ckey] = cached
        p, d = cached
        start = 0
        after = body.get("search_after")
        if after:
            f, order, fmt = sort[0]
            a0 = float(after[0]) if f != "_shard_doc" else 0.0
            a0 = -a0 if order == "desc" else a0
            lo, hi = np.searchsorted(p, a0, "left"), np.searchsorted(p, a0, "right")
            a1 = int(after[-1]) if len(after) > 1 else -(1 << 62)
            start = int(lo + np.searchsorted(d[lo:hi], a1, "right"))
            if f == "_shard_doc":
                start = int(np.searchsorted(d, int(after[0]), "right"))
        sel_p, sel_d = p[start:start + size], d[start:start + size]
        by_num = {ix.number: ix for ix in self.indices.values()}
        src = body.get("_source", True)
        includes = src if isinstance(src, list) else (src or {}).get("includes") if isinstance(
            src, dict) else None
        f, order, fmt = sort[0]
        pvals = (-sel_p if order == "desc" else sel_p).tolist()
        dvals = sel_d.tolist()
        srcs: list[dict[str, Any] | None] = [None] * len(dvals)
        if src is not False:
            nums = np.right_shift(sel_d, 32)
            for num in np.unique(nums).tolist():
                at = np.flatnonzero(nums == num)
                ix = by_num[num]
                for i, doc in zip(at.tolist(), _sources(ix, sel_d[at] & 0xFFFFFFFF, includes),
                                  strict=True):
                    srcs[i] = doc
        hits = []
        for pval, dv, doc in zip(pvals, dvals, srcs, strict=True):
            ix = by_num[dv >> 32]
            hit: dict[str, Any] = {"_index": ix.name, "_id": f"{ix.number}-{dv & 0xFFFFFFFF}",
                                   "_score": float(pval) if f == "_score" else None}
            if doc is not None:
                hit["_source"] = doc
            first: Any = float(pval) if f == "_score" else int(pval)
            if f in DATE_FIELDS and fmt == "epoch_millis":
                first = str(int(pval))
            hit["sort"] = [dv] if f == "_shard_doc" else [first, dv]
            hits.append(hit)
        return hits

    # -- aggregations ----------------------------------------------------------------------
    def aggs(self, parts: list[tuple[Index, np.ndarray]], spec: dict[str, Any]
             ) -> dict[str, Any]:
        """Evaluate an aggregation tree over the matching documents."""
        return {name: self._agg(parts, a) for name, a in spec.items()}

    def _sub(self, parts: list[tuple[Index, np.ndarray]], a: dict[str, Any],
             doc_count: int) -> dict[str, Any]:
        out: dict[str, Any] = {"doc_count": doc_count}
        if a.get("aggs") or a.get("aggregations"):
            out.update(self.aggs(parts, a.get("aggs") or a["aggregations"]))
        return out

    def _agg(self, parts: list[tuple[Index, np.ndarray]], a: dict[str, Any]) -> dict[str, Any]:
        kind = next(k for k in a if k not in ("aggs", "aggregations", "meta"))
        b = a[kind]
        if kind == "filters":
            filters = b["filters"]
            named = filters.items() if isinstance(filters, dict) else enumerate(filters)
            buckets = {}
            for name, q in named:
                sub = [(ix, pos[self.mask(ix, ix.n, q)[pos]]) for ix, pos in parts]
                buckets[str(name)] = self._sub(sub, a, sum(len(p) for _, p in sub))
            return {"buckets": buckets if isinstance(filters, dict) else list(buckets.values())}
        if kind == "missing":
            sub = [(ix, pos[_missing(ix.col(b["field"])[pos])]) for ix, pos in parts]
            return self._sub(sub, a, sum(len(p) for _, p in sub))
        if kind == "date_histogram":
            step = _interval_ms(b.get("fixed_interval") or b.get("interval", "1m"))
            groups = self._group(parts, lambda ix, pos: (ix.col(b["field"])[pos] // step) * step)
            keys = sorted(groups)
            if int(b.get("min_doc_count", 0)) == 0 and keys:
                keys = list(range(int(keys[0]), int(keys[-1]) + step, step))
            buckets = []
            for k in keys:
                sub = groups.get(k, [])
                n = sum(len(p) for _, p in sub)
                if n < int(b.get("min_doc_count", 0)):
                    continue
                buckets.append({"key_as_string": _iso(int(k)), "key": int(k),
                                **self._sub(sub, a, n)})
            return {"buckets": buckets}
        if kind == "terms":
            f = b["field"]
            groups = self._group(parts, lambda ix, pos: ix.col(f)[pos], skip_missing=True)
            include = b.get("include")
            if isinstance(include, list):
                allowed = {str(_key(v)) for v in include}
                groups = {k: v for k, v in groups.items() if str(_key(k)) in allowed}
            counts = {k: sum(len(p) for _, p in v) for k, v in groups.items()}
            ranked = sorted(counts, key=lambda k: (-counts[k], str(k)))
            size = int(b.get("size", 10))
            top = ranked[:size]
            buckets = [{"key": _key(k), **self._sub(groups[k], a, counts[k])} for k in top]
            return {"doc_count_error_upper_bound": 0,
                    "sum_other_doc_count": int(sum(counts[k] for k in ranked[size:])),
                    "buckets": buckets}
        raise EsError(400, "parsing_exception", f"unknown aggregation [{kind}]")

    @staticmethod
    def _group(parts: list[tuple[Index, np.ndarray]], keyfn: Any, skip_missing: bool = False
               ) -> dict[Any, list[tuple[Index, np.ndarray]]]:
        groups: dict[Any, list[tuple[Index, np.ndarray]]] = {}
        for ix, pos in parts:
            if not len(pos):
                continue
            keys = keyfn(ix, pos)
            if skip_missing:
                keep = ~_missing(keys)
                keys, pos = keys[keep], pos[keep]
            if not len(pos):
                continue
            codes, uniq = pd.factorize(keys, sort=False)
            order = np.argsort(codes, kind="stable")
            bounds = np.cumsum(np.bincount(codes, minlength=len(uniq)))
            start = 0
            for j, k in enumerate(uniq):
                sel = pos[order[start:bounds[j]]]
                start = int(bounds[j])
                k = k.item() if hasattr(k, "item") else k
                groups.setdefault(k, []).append((ix, sel))
        return groups


def _list(v: Any) -> list[Any]:
    return [] if v is None else v if isinstance(v, list) else [v]


def _sort_spec(sort: Any) -> list[tuple[str, str, str | None]]:
    out = []
    for s in _list(sort) or ["_score"]:
        if isinstance(s, str):
            out.append((s, "desc" if s == "_score" else "asc", None))
        else:
            (f, o), = s.items()
            if isinstance(o, str):
                out.append((f, o, None))
            else:
                out.append((f, o.get("order", "asc"), o.get("format")))
    if len(out) > 2 or (len(out) == 2 and out[1][0] != "_shard_doc"):
        raise EsError(400, "illegal_argument_exception", "test server: sort on one field + "
                                                         "_shard_doc only")
    return out


def _sources(ix: Index, pos: np.ndarray, includes: list[str] | None) -> list[dict[str, Any]]:
    """The _source of documents at positions pos (missing fields left out)."""
    keys = [k for k in (includes if includes is not None else list(ix.cols)) if k in ix.cols]
    cols = []
    for k in keys:
        a = ix.cols[k][pos]
        if k in DATE_FIELDS:
            vals = [v + "Z" for v in np.datetime_as_string(a.astype("datetime64[ms]"),
                                                           unit="ms").tolist()]
        elif a.dtype.kind == "f":
            vals = [None if v != v else _key(v) for v in a.tolist()]
        else:
            vals = a.tolist()
        cols.append(vals)
    out = []
    for row in zip(*cols, strict=True) if cols else [()] * len(pos):
        doc = {k: v for k, v in zip(keys, row, strict=True) if v is not None}
        for k in ix.nested.intersection(doc):  # give nested objects back as they came
            *path, leaf = k.split(".")
            node = doc
            for p in path:
                node = node.setdefault(p, {})
            node[leaf] = doc.pop(k)
        out.append(doc)
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(ms: int) -> str:
    """Epoch milliseconds as Elasticsearch prints a date (ISO, milliseconds, Z)."""
    d = _EPOCH + timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class EsServer:
    """Threaded loopback HTTP server speaking the Elasticsearch subset; use as a context."""

    def __init__(self, version: str = "9.1.0", api_key: str | None = None,
                 product: str | None = "Elasticsearch") -> None:
        self.engine = Engine()
        self.version = version
        self.api_key = api_key
        self.product = product  # the X-Elastic-Product header (None: a server that is not ES)
        self.faults: list[Fault] = []
        self.log: list[dict[str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> EsServer:
        server = self
        handler = type("Handler", (_Handler,), {"es": server})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    def inject(self, kind: str, **kw: Any) -> Fault:
        """Add a fault (see Fault); returns it so a test can check it was consumed."""
        f = Fault(kind, **kw)
        self.faults.append(f)
        return f

    def clear(self) -> None:
        """Remove faults and forget the request log."""
        self.faults.clear()
        self.log.clear()

    def take(self, path: str) -> list[Fault]:
        """The faults that apply to this request (consuming one use of each)."""
        out = []
        with self.engine.lock:
            for f in self.faults:
                hit = f.path == path if f.path == "/" else f.path in path
                if hit and (f.times is None or f.times > 0):
                    if f.times is not None:
                        f.times -= 1
                    out.append(f)
                    if f.kind == "status":  # the request fails: later faults wait their turn
                        break
        return out


class _Handler(BaseHTTPRequestHandler):
    es: EsServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        t0 = time.monotonic()
        url = urlsplit(self.path)
        status, body = 200, {}
        try:
            self._check_headers()
            faults = self.es.take(url.path)
            for f in faults:
                if f.kind == "slow":
                    time.sleep(f.seconds)
                if f.kind == "status":
                    etype = {429: "es_rejected_execution_exception",
                             403: "security_exception"}.get(f.status, "internal_error")
                    raise EsError(f.status, etype, f"injected HTTP {f.status}")
            status, body = 200, self._route(method, url.path, parse_qs(url.query), raw, faults)
        except EsError as exc:
            status, body = exc.status, exc.body()
        except (KeyError, ValueError, TypeError) as exc:
            status, body = 400, EsError(400, "parsing_exception", repr(exc)[:200]).body()
        data = b"" if body is None else json.dumps(body).encode()
        self.es.log.append({"method": method, "path": url.path, "status": status,
                            "bytes_in": len(raw), "bytes_out": len(data),
                            "ms": round((time.monotonic() - t0) * 1000)})
        try:
            self.send_response(status)
            if self.es.product:
                self.send_header("X-Elastic-Product", self.es.product)
            self.send_header("Content-Type", "application/vnd.elasticsearch+json;"
                                             "compatible-with=" + self.es.version.split(".")[0])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _check_headers(self) -> None:
        accept = self.headers.get("Accept", "")
        m = re.search(r"compatible-with=(\d+)", accept)
        major = int(self.es.version.split(".")[0])
        if m and int(m.group(1)) not in (major, major - 1):
            raise EsError(400, "media_type_header_exception",
                          f"Accept version must be either version {major} or {major - 1}, "
                          f"but found {m.group(1)}")
        if self.es.api_key is not None:
            if self.headers.get("Authorization") != f"ApiKey {self.es.api_key}":
                raise EsError(401, "security_exception", "unable to authenticate request")

    def _route(self, method: str, path: str, qs: dict[str, list[str]], raw: bytes,
               faults: list[Fault]) -> Any:
        eng = self.es.engine
        parts = [p for p in path.split("/") if p]
        if not parts:
            return {"name": "test-node", "cluster_name": "incident-lib-test",
                    "version": {"number": self.es.version, "build_flavor": "default"},
                    "tagline": "You Know, for Search"}
        if parts[-1] == "_bulk":
            return self._bulk(parts[0] if len(parts) > 1 else None, raw)
        if parts[-1] == "_refresh":
            return {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if parts == ["_pit"] and method == "DELETE":
            pid = json.loads(raw or b"{}").get("id")
            found = eng.pits.pop(pid, None) is not None
            return {"succeeded": True, "num_freed": int(found)}
        if parts[-1] == "_pit" and len(parts) == 2:
            keep = _interval_ms(qs.get("keep_alive", ["1m"])[0])
            pid = uuid.uuid4().hex
            eng.pits[pid] = Pit(eng.resolve(parts[0]), time.monotonic() + keep / 1000)
            return {"id": pid}
        if parts[-1] == "_search":
            return self._search(parts[0] if len(parts) > 1 else None, qs, raw, faults)
        raise EsError(400, "illegal_argument_exception", f"test server: no route {path}")

    def _bulk(self, default: str | None, raw: bytes) -> dict[str, Any]:
        lines = raw.decode("utf-8").splitlines()
        items, by_index = [], {}
        i = 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            (op, meta), = json.loads(lines[i]).items()
            doc = json.loads(lines[i + 1])
            i += 2
            name = meta.get("_index") or default
            by_index.setdefault(name, []).append(doc)
            items.append({op: {"_index": name, "status": 201, "result": "created"}})
        with self.es.engine.lock:
            for name, docs in by_index.items():
                self.es.engine.index(name).add(docs)
        return {"took": 1, "errors": False, "items": items}

    def _search(self, target: str | None, qs: dict[str, list[str]], raw: bytes,
                faults: list[Fault]) -> dict[str, Any]:
        eng = self.es.engine
        body = json.loads(raw or b"{}")
        pit = None
        if "pit" in body:
            pid = body["pit"]["id"]
            expire = any(f.kind == "expire_pit" for f in faults)
            pit = eng.pits.get(pid)
            if expire or pit is None or pit.keep_alive_until < time.monotonic():
                eng.pits.pop(pid, None)
                raise EsError(404, "search_context_missing_exception",
                              f"No search context found for id [{pid[:8]}]")
            if "keep_alive" in body["pit"]:
                pit.keep_alive_until = time.monotonic() + _interval_ms(
                    body["pit"]["keep_alive"]) / 1000
            targets = pit.indices
        else:
            if target is None:
                raise EsError(400, "action_request_validation_exception", "no index")
            targets = eng.resolve(target)
        partial = any(f.kind == "partial" for f in faults)
        with eng.lock:
            out = eng.search(targets, body, 1 if partial else None, pit)
        out["timed_out"] = any(f.kind == "timed_out" for f in faults)
        total = SHARDS * max(len(targets), 1)
        failures = [{"shard": 1, "index": targets[0][0].name if targets else "",
                     "reason": {"type": "node_disconnected_exception",
                                "reason": "injected shard failure"}}] if partial else []
        out["_shards"] = {"total": total, "successful": total - len(failures), "skipped": 0,
                          "failed": len(failures), **({"failures": failures} if failures else {})}
        if pit is not None:
            out["pit_id"] = body["pit"]["id"]
        return _filter_path(out, qs.get("filter_path", [""])[0])


def _filter_path(body: dict[str, Any], spec: str) -> dict[str, Any]:
    """Keep only the dotted paths listed (comma-separated), like Elasticsearch's filter_path."""
    if not spec:
        return body
    paths = [p.split(".") for p in spec.split(",")]

    def keep(node: Any, rest: list[list[str]]) -> Any:
        if any(not r for r in rest) or not isinstance(node, dict | list):
            return node
        if isinstance(node, list):
            if all(len(r) == 1 for r in rest):
                names = [r[0] for r in rest]
                return [{k: x[k] for k in names if k in x} if isinstance(x, dict) else x
                        for x in node]
            return [keep(x, rest) for x in node]
        out = {}
        for k, v in node.items():
            sub = [r[1:] for r in rest if r[0] == k]
            if sub:
                kept = keep(v, sub)
                if kept not in ({}, []) or any(not s for s in sub):
                    out[k] = kept
        return out

    return keep(body, paths)
