"""Elasticsearch 8/9 logs and changes through the official client: pushdown, PIT, faults.

Over 400 lines on purpose: it is one driver, and its wire behaviour (paging, retries, partial
shards, expired point-in-time) is easier to review in one place than spread over modules.

Config (`sources.logs` / `sources.changes`)::

    {kind: elasticsearch, url: https://es:9200, index: "logs-*", api_key_env: ES_API_KEY,
     username: u, password_env: ES_PASS, ca_bundle: /etc/ssl/es-ca.pem, verify_certs: true,
     timeout: 30, max_retries: 3, retry_backoff: 0.5, max_lines: 200000, page_size: 10000,
     keep_alive: 2m, fields: {service: service.name, ...}, agg_fields: {service: ...keyword}}

Filters are query DSL built from structured values (range, terms); no text ever goes into
`query_string`. Counts and "what changed" are aggregations; raw lines are read through a
point-in-time with `search_after`, capped at max_lines: over the cap a seeded uniform random
sample (`function_score` + `random_score` on `_seq_no`, sorted by score) is read, never the
first lines in time (which would drop the incident window). 429/502/503/504 and timeouts are
retried by the transport with exponential backoff; timed-out or failed shards mark results
partial; an expired point-in-time is reopened and the read resumes where it stopped.

Client and server majors must match: the 9.x client sends `compatible-with=9`, which an 8.x
cluster refuses. For an 8.x cluster pin `elasticsearch>=8.13,<9` (the same API calls are used).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from ..core.config import secret_from_env
from ..core.errors import InputError, QueryError, SourceError
from .base import CHANGE_COLUMNS, LOG_COLUMNS, QueryResult
from .files import ECS_CHANGE_FIELDS, ECS_LOG_FIELDS
from .tables import dig

__all__ = ["ElasticsearchLogSource", "ElasticsearchChangeSource", "make_client",
           "DEFAULT_MAX_LINES", "PAGE_SIZE"]

DEFAULT_MAX_LINES = 200_000
PAGE_SIZE = 10_000  # the most one page may hold (index.max_result_window)
RETRY_STATUS = (429, 502, 503, 504)
MISSING = None  # value of the bucket for lines without the field
_MIN_TIEBREAK = -1  # below every _shard_doc: resuming re-reads ties, which are de-duplicated


def make_client(spec: dict[str, Any]) -> Any:
    """An `elasticsearch.Elasticsearch` client from a config spec (secrets from env only)."""
    from elasticsearch import Elasticsearch

    url = str(spec.get("url") or "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"sources: elasticsearch url {url[:80]!r} must be http(s)://host:port")
    if parts.username or parts.password:
        raise InputError("sources: elasticsearch url holds credentials: use api_key_env or "
                         "username + password_env instead")
    kw: dict[str, Any] = {
        "request_timeout": float(spec.get("timeout", 30)),
        "max_retries": int(spec.get("max_retries", 3)),
        "retry_on_status": RETRY_STATUS,
        "retry_on_timeout": True,
        "retry_backoff_base": float(spec.get("retry_backoff", 0.5)),
        "retry_backoff_cap": float(spec.get("retry_backoff_cap", 10.0)),
    }
    api_key = secret_from_env(spec, "api_key")
    password = secret_from_env(spec, "password")
    if spec.get("api_key_env") and not api_key:
        raise SourceError(f"environment variable {spec['api_key_env']} (api_key_env) is not set")
    if api_key:
        kw["api_key"] = api_key
    elif spec.get("username"):
        if password is None:
            raise SourceError(f"environment variable {spec.get('password_env')} "
                              "(password_env) is not set")
        kw["basic_auth"] = (str(spec["username"]), password)
    if parts.scheme == "https":
        kw["verify_certs"] = bool(spec.get("verify_certs", True))
        ca = spec.get("ca_bundle") or secret_from_env(spec, "ca_bundle")
        if ca:
            kw["ca_certs"] = str(ca)
    return Elasticsearch(url, **kw)


def _describe(exc: Exception, what: str, timeout: float) -> SourceError:
    """A one-line SourceError for a client exception; never includes credentials or bodies."""
    from elastic_transport import ConnectionError as ConnError
    from elastic_transport import ConnectionTimeout, TlsError
    from elasticsearch import ApiError, UnsupportedProductError

    if isinstance(exc, UnsupportedProductError):
        return SourceError(f"{what}: the server is not Elasticsearch (no X-Elastic-Product "
                           "header)")
    if isinstance(exc, ApiError):
        etype, reason = _error_type(exc.body)
        if exc.meta.status == 400 and "media_type_header" in etype:
            return SourceError(f"{what}: the server refused the client's API version; the "
                               "client major must match the server's (elasticsearch<9 for 8.x)")
        if exc.meta.status in (401, 403):
            return SourceError(f"{what}: Elasticsearch refused the credentials (HTTP "
                               f"{exc.meta.status}): check api_key_env / username + password_env")
        cls = QueryError if exc.meta.status == 400 else SourceError
        tail = " after retries with backoff" if exc.meta.status in RETRY_STATUS else ""
        return cls(f"{what}: Elasticsearch answered HTTP {exc.meta.status}{tail} "
                   f"({etype}: {reason[:200]})")
    if isinstance(exc, ConnectionTimeout):
        return SourceError(f"{what}: Elasticsearch did not answer within {timeout:g}s (retried); "
                           "raise `timeout` in the config or narrow the window")
    if isinstance(exc, TlsError):
        return SourceError(f"{what}: TLS verification failed: set ca_bundle to the cluster's CA")
    if isinstance(exc, ConnError):
        return SourceError(f"{what}: cannot reach Elasticsearch ({type(exc).__name__})")
    return SourceError(f"{what}: {type(exc).__name__}")


def _error_type(body: Any) -> tuple[str, str]:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        root = (err.get("root_cause") or [err])[0]
        return str(root.get("type", err.get("type", "error"))), str(root.get("reason", ""))
    return "error", str(err or "")[:200]


def _is_pit_expired(exc: Exception) -> bool:
    from elasticsearch import ApiError

    return isinstance(exc, ApiError) and "search_context_missing" in json.dumps(
        exc.body, default=str)


def _ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


class _Base:
    """Client, index, field mapping and the paged reader shared by logs and changes."""

    backend = "elasticsearch"

    def __init__(self, client: Any, index: str, fields: dict[str, str], *,
                 agg_fields: dict[str, str] | None = None, timeout: float = 30.0,
                 page_size: int = PAGE_SIZE, keep_alive: str = "2m", max_reopen: int = 3,
                 terms_size: int = 200) -> None:
        self.client = client
        self.index = index
        self.fields = dict(fields)
        self.agg_fields = {**self.fields, **(agg_fields or {})}
        self.timeout = timeout
        self.page_size = page_size
        self.keep_alive = keep_alive
        self.max_reopen = max_reopen
        self.terms_size = terms_size
        self.requests = 0
        self._checked = False

    @classmethod
    def _kwargs(cls, spec: dict[str, Any]) -> dict[str, Any]:
        if not spec.get("index"):
            raise InputError("sources: elasticsearch needs `index` (an index name or pattern)")
        kw = {k: spec[k] for k in ("page_size", "keep_alive", "max_reopen", "terms_size")
              if k in spec}
        return {"client": make_client(spec), "index": str(spec["index"]),
                "agg_fields": spec.get("agg_fields"), "timeout": float(spec.get("timeout", 30)),
                **kw}

    def _call(self, what: str, fn: Any, **kw: Any) -> Any:
        """One API call; client errors become SourceError (retries happen in the transport)."""
        self._check_server()
        self.requests += 1
        try:
            return fn(**kw).body
        except Exception as exc:
            if _is_pit_expired(exc):
                raise
            raise _describe(exc, what, self.timeout) from None

    def _check_server(self) -> None:
        """Check once that the server's major version matches the client's."""
        if self._checked:
            return
        self._checked = True
        from elasticsearch import __versionstr__

        self.requests += 1
        try:
            info = self.client.info().body
        except Exception as exc:
            from elasticsearch import AuthorizationException

            if isinstance(exc, AuthorizationException):  # a read-only key may not see `/`:
                return  # the compatible-with header still guards the major version
            self._checked = False
            raise _describe(exc, f"Elasticsearch at {self.index}", self.timeout) from None
        server = str(info.get("version", {}).get("number", "0"))
        if server.split(".")[0] != __versionstr__.split(".")[0]:
            raise SourceError(f"Elasticsearch server is {server} but the client is "
                              f"{__versionstr__}: install elasticsearch=={server.split('.')[0]}.*")

    def _range(self, start: pd.Timestamp, end: pd.Timestamp, *, end_open: bool = False
               ) -> dict[str, Any]:
        bound = {"gte": _ms(start), ("lt" if end_open else "lte"): _ms(end),
                 "format": "epoch_millis"}
        return {"range": {self.fields["time"]: bound}}

    @staticmethod
    def _check(body: dict[str, Any], warnings: list[str]) -> bool:
        """Warnings for a timed-out or shard-failed answer; True when it is partial."""
        partial = False
        if body.get("timed_out"):
            partial = True
            _add(warnings, "Elasticsearch timed out on the query: counts are partial")
        sh = body.get("_shards") or {}
        if sh.get("failed"):
            partial = True
            reasons = sorted({str((f.get("reason") or {}).get("type", "unknown"))
                              for f in sh.get("failures") or []})
            _add(warnings, f"{sh['failed']} of {sh.get('total', '?')} shards failed "
                           f"({', '.join(reasons) or 'no reason given'}): results are partial")
        return partial

    def _scan(self, query: dict[str, Any], plan: Callable[[int], tuple[dict, list]],
              columns: list[str], limit: int | None, warnings: list[str]
              ) -> tuple[dict[str, list[Any]], dict[str, Any]]:
        """Columns of the hits via point-in-time + search_after; reopens an expired PIT.

        The first page (size 0) counts the matches inside the PIT; plan(matched) then gives
        the (query, sort) the pages are read with. Each page is turned into column values at
        once, so the client holds at most one page of JSON at a time.
        """
        source = [self.fields[c] for c in columns if c in self.fields]
        cols: dict[str, list[Any]] = {c: [] for c in columns}
        meta: dict[str, Any] = {"partial": False, "reopened": 0, "pages": 0}
        pit = self._open_pit()
        try:
            read = 0
            after: list[Any] | None = None
            boundary: set[str] = set()
            want: int | None = None
            sort: list[Any] = [{"_shard_doc": "asc"}]
            while want is None or read < want:
                size = 0 if want is None else min(self.page_size, want - read)
                try:
                    body = self._page(pit, query, sort, source, size, after, track=want is None)
                except Exception as exc:
                    if not _is_pit_expired(exc):
                        raise
                    if meta["reopened"] >= self.max_reopen:
                        raise SourceError(
                            f"{self.index}: the point-in-time expired {meta['reopened'] + 1} "
                            f"times while reading ({read} of {want or '?'} lines read): "
                            f"raise keep_alive (now {self.keep_alive})") from None
                    meta["reopened"] += 1
                    pit = self._open_pit()
                    if after is not None:
                        after = [after[0], _MIN_TIEBREAK]
                    continue
                pit = body.get("pit_id", pit)
                meta["partial"] |= self._check(body, warnings)
                if want is None:
                    meta["matched"] = int(body["hits"]["total"]["value"])
                    want = meta["matched"] if limit is None else min(limit, meta["matched"])
                    query, sort = plan(meta["matched"])
                    continue
                meta["pages"] += 1
                page = body["hits"]["hits"]
                if not page:
                    break
                if boundary:
                    page = [h for h in page if h.get("_id") not in boundary]
                page = page[: want - read]
                read += len(page)
                self._extract(page, cols)
                after = body["hits"]["hits"][-1]["sort"]
                boundary = {h.get("_id") for h in body["hits"]["hits"]
                            if h["sort"][0] == after[0]}
            if meta["reopened"]:
                _add(warnings, f"the point-in-time expired {meta['reopened']} time(s); it was "
                               "reopened and the read resumed (lines written meanwhile may be "
                               "included)")
            return cols, meta
        finally:
            self._close_pit(pit)

    def _open_pit(self) -> str:
        body = self._call(f"open point-in-time on {self.index}", self.client.open_point_in_time,
                          index=self.index, keep_alive=self.keep_alive)
        return str(body["id"])

    def _close_pit(self, pit: str) -> None:
        try:
            self.requests += 1
            self.client.close_point_in_time(id=pit)
        except Exception:  # noqa: BLE001 - an expired or closed PIT needs no closing
            pass

    def _page(self, pit: str, query: dict[str, Any], sort: list[Any], source: list[str],
              size: int, after: list[Any] | None, track: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"size": size, "query": query, "sort": sort, "_source": source,
                                "pit": {"id": pit, "keep_alive": self.keep_alive},
                                "track_total_hits": track}
        if after is not None:
            body["search_after"] = after
        self._check_server()
        self.requests += 1
        try:
            return _with_hits(self.client.search(body=body, filter_path=[
                "pit_id", "timed_out", "_shards", "hits.total", "hits.hits._id",
                "hits.hits._source", "hits.hits.sort"]).body)
        except Exception as exc:
            if _is_pit_expired(exc):
                raise
            raise _describe(exc, f"search {self.index}", self.timeout) from None

    def _aggs(self, what: str, query: dict[str, Any], aggs: dict[str, Any],
              warnings: list[str]) -> tuple[dict[str, Any], bool, dict[str, Any]]:
        """Run a size-0 aggregation search; (aggregations, partial, request body)."""
        body = {"size": 0, "track_total_hits": True, "query": query, "aggs": aggs}
        res = self._call(what, self.client.search, index=self.index, body=body)
        return res.get("aggregations") or {}, self._check(res, warnings), body

    def _extract(self, hits: list[dict], cols: dict[str, list[Any]]) -> None:
        """Append the hits' _source values to the column lists."""
        srcs = [h.get("_source") or {} for h in hits]
        for c, out in cols.items():
            f = self.fields.get(c)
            vals = [s.get(f) for s in srcs] if f else [None] * len(srcs)
            if f and "." in f and any(v is None for v in vals):  # nested objects in _source
                vals = [dig(s, f) if v is None else v for s, v in zip(srcs, vals, strict=True)]
            out.extend(vals)

    @staticmethod
    def _frame(cols: dict[str, list[Any]], columns: list[str]) -> pd.DataFrame:
        """A frame from column lists: inferred dtypes like the files backend, time in UTC."""
        df = pd.DataFrame({c: pd.Series(v, dtype=None if any(x is not None for x in v)
                                         else object) for c, v in cols.items()},
                          columns=columns)
        if len(df):
            numeric = pd.api.types.is_numeric_dtype(df["time"])  # epoch_millis in _source
            df["time"] = pd.to_datetime(df["time"], utc=True, unit="ms" if numeric else None,
                                        format=None if numeric else "ISO8601")
            df["time"] = df["time"].astype("datetime64[ms, UTC]")
        else:
            df["time"] = pd.Series([], dtype="datetime64[ms, UTC]")
        return df.sort_values("time", kind="stable").reset_index(drop=True)


def _with_hits(body: dict[str, Any]) -> dict[str, Any]:
    """filter_path drops empty `hits.hits`; put it back."""
    body.setdefault("hits", {}).setdefault("hits", [])
    body["hits"].setdefault("total", {"value": 0, "relation": "eq"})
    return body


def _add(warnings: list[str], text: str) -> None:
    if text not in warnings:
        warnings.append(text)


def _group_aggs(fields: list[str], size: int, include: list[list[Any]] | None = None,
                depth: int = 0) -> dict[str, Any]:
    """Nested terms + missing aggregations over fields (missing values become a bucket)."""
    if depth == len(fields):
        return {}
    sub = _group_aggs(fields, size, include, depth + 1)
    terms: dict[str, Any] = {"field": fields[depth], "size": size}
    if include is not None:
        terms = {"field": fields[depth], "size": max(len(include[depth]), 1),
                 "include": include[depth] or ["\x00"]}
    out: dict[str, Any] = {f"v{depth}": {"terms": terms}, f"m{depth}": {"missing": {
        "field": fields[depth]}}}
    if sub:
        for a in out.values():
            a["aggs"] = sub
    return out


def _walk(node: dict[str, Any], depth: int, n: int, key: tuple = ()) -> Iterator[tuple]:
    """(values..., count) rows from _group_aggs output."""
    if depth == n:
        yield (*key, int(node["doc_count"]))
        return
    for b in node.get(f"v{depth}", {}).get("buckets", []):
        yield from _walk(b, depth + 1, n, (*key, b["key"]))
    miss = node.get(f"m{depth}")
    if miss and miss.get("doc_count"):
        yield from _walk(miss, depth + 1, n, (*key, MISSING))


class ElasticsearchLogSource(_Base):
    """Logs in an index pattern with ECS fields: counts pushed down, raw lines via PIT."""

    def __init__(self, client: Any, index: str, fields: dict[str, str] | None = None, *,
                 max_lines: int = DEFAULT_MAX_LINES, **kw: Any) -> None:
        super().__init__(client, index, {**ECS_LOG_FIELDS, **(fields or {})}, **kw)
        self.max_lines = max_lines

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ElasticsearchLogSource:
        """A log source from `sources.logs` (kind: elasticsearch)."""
        return cls(fields=spec.get("fields"),
                   max_lines=int(spec.get("max_lines", DEFAULT_MAX_LINES)), **cls._kwargs(spec))

    def _query(self, start: pd.Timestamp, end: pd.Timestamp,
               services: list[str] | None) -> dict[str, Any]:
        flt: list[dict[str, Any]] = [self._range(start, end)]
        if services:
            flt.append({"terms": {self.agg_fields["service"]: sorted(map(str, services))}})
        return {"bool": {"filter": flt}}

    def read_logs(self, start: pd.Timestamp, end: pd.Timestamp, *,
                  services: list[str] | None = None, limit: int | None = None) -> QueryResult:
        """Lines in [start, end]; over the cap, a seeded uniform random sample (random_score)."""
        cap = self.max_lines if limit is None else limit
        warnings: list[str] = []
        tsort = [{self.fields["time"]: {"order": "asc", "format": "epoch_millis"}},
                 {"_shard_doc": "asc"}]
        plan_used: dict[str, Any] = {}

        def plan(matched: int) -> tuple[dict, list]:
            q: dict[str, Any] = self._query(start, end, services)
            s: list[Any] = tsort
            if matched > cap:
                q = {"function_score": {"query": q, "boost_mode": "replace",
                                        "random_score": {"seed": 0, "field": "_seq_no"}}}
                s = [{"_score": "desc"}, {"_shard_doc": "asc"}]
            plan_used.update(query=q, sort=s, sampled=matched > cap)
            return q, s

        source = [self.fields[c] for c in LOG_COLUMNS if c in self.fields]
        cols, meta = self._scan(self._query(start, end, services), plan, LOG_COLUMNS, cap,
                                warnings)
        sampled = plan_used["sampled"]
        df = self._frame(cols, LOG_COLUMNS)
        del cols
        sampling = (f"uniform random sample (random_score seed 0) of {len(df)} out of "
                    f"{meta['matched']}" if sampled else "all lines")
        if meta["matched"] > len(df) and not sampled:
            sampling = f"{len(df)} of {meta['matched']} matching lines (the read ended early)"
        notes = {"matched": int(meta["matched"]), "read": len(df), "sampling": sampling,
                 "index": self.index, "pages": meta["pages"], "pit_reopened": meta["reopened"]}
        body = {"query": plan_used["query"], "sort": plan_used["sort"], "_source": source,
                "size": self.page_size}
        return QueryResult(df, json.dumps(body, sort_keys=True), self.backend, warnings,
                           meta["partial"], notes)

    def count_over_time(self, start: pd.Timestamp, end: pd.Timestamp, interval: str,
                        by: list[str]) -> QueryResult:
        """Counts per interval bucket and `by` columns: date_histogram + terms, pushed down."""
        step_ms = max(int(pd.Timedelta(interval).total_seconds() * 1000), 1)
        fields = [self.agg_fields[b] for b in by]
        hist: dict[str, Any] = {"date_histogram": {"field": self.fields["time"],
                                                   "fixed_interval": f"{step_ms}ms",
                                                   "min_doc_count": 1}}
        sub = _group_aggs(fields, self.terms_size)
        if sub:
            hist["aggs"] = sub
        warnings: list[str] = []
        aggs, partial, body = self._aggs(f"count lines in {self.index}",
                                         self._query(start, end, None), {"t": hist}, warnings)
        rows = []
        for b in aggs.get("t", {}).get("buckets", []):
            for vals in _walk(b, 0, len(fields)):
                rows.append((b["key"], *vals))
        df = pd.DataFrame(rows, columns=["time", *by, "count"])
        df["time"] = pd.to_datetime(df["time"], unit="ms", utc=True)
        df = df[df["count"] > 0].sort_values(["time", *by], kind="stable", na_position="last")
        df = df.reset_index(drop=True)
        _other(aggs, warnings)
        return QueryResult(df, json.dumps(body, sort_keys=True), self.backend, warnings, partial,
                           {"index": self.index, "buckets": len(df)})

    def field_changes(self, baseline: tuple[pd.Timestamp, pd.Timestamp],
                      incident: tuple[pd.Timestamp, pd.Timestamp], fields: list[str], *,
                      pairs: bool = True, max_values: int = 200) -> QueryResult:
        """Counts per field value (and pair) in incident vs baseline, by aggregations.

        Columns: field, value, baseline_count, incident_count (the `what_changed` inputs).
        The incident window picks the top max_values per field or pair (terms); the baseline
        is counted for exactly those values (terms + include), so nothing is scanned here.
        """
        combos: list[tuple[str, ...]] = [(f,) for f in fields]
        if pairs:
            combos += [(a, b) for i, a in enumerate(fields) for b in fields[i + 1:]]
        warnings: list[str] = []
        inc_q = {"bool": {"filter": [self._range(*incident)]}}
        base_q = {"bool": {"filter": [self._range(*baseline, end_open=True)]}}
        aggs = {f"c{i}": {"filters": {"filters": {"all": {"match_all": {}}}},
                          "aggs": _group_aggs([self.agg_fields[f] for f in c], max_values)}
                for i, c in enumerate(combos)}
        inc, p1, b1 = self._aggs(f"incident field counts in {self.index}", inc_q, aggs, warnings)
        inc_rows = {i: sorted(_walk(inc[f"c{i}"]["buckets"]["all"], 0, len(c)),
                              key=lambda r: -r[-1])[:max_values] for i, c in enumerate(combos)}
        base_aggs = {}
        for i, c in enumerate(combos):
            include = [sorted({r[d] for r in inc_rows[i] if r[d] is not MISSING}, key=str)
                       for d in range(len(c))]
            base_aggs[f"c{i}"] = {"filters": {"filters": {"all": {"match_all": {}}}},
                                  "aggs": _group_aggs([self.agg_fields[f] for f in c], 0,
                                                      include)}
        base, p2, b2 = self._aggs(f"baseline field counts in {self.index}", base_q, base_aggs,
                                  warnings)
        rows = []
        for i, c in enumerate(combos):
            bcounts = {r[:-1]: r[-1] for r in _walk(base[f"c{i}"]["buckets"]["all"], 0, len(c))}
            for r in inc_rows[i]:
                rows.append({"field": " & ".join(c),
                             "value": " & ".join("" if v is MISSING else str(v)
                                                 for v in r[:-1]),
                             "values": list(r[:-1]), "baseline_count": bcounts.get(r[:-1], 0),
                             "incident_count": r[-1]})
        df = pd.DataFrame(rows, columns=["field", "value", "values", "baseline_count",
                                         "incident_count"])
        query = json.dumps({"incident": b1, "baseline": b2}, sort_keys=True, default=str)
        return QueryResult(df, query, self.backend, warnings, p1 or p2,
                           {"index": self.index, "requests": 2})


def _other(aggs: dict[str, Any], warnings: list[str]) -> None:
    """Warn when a terms aggregation left values out (sum_other_doc_count > 0)."""
    stack = [aggs]
    while stack:
        node = stack.pop()
        for k, v in node.items():
            if isinstance(v, dict):
                if k.startswith("v") and v.get("sum_other_doc_count"):
                    _add(warnings, "some values beyond terms_size were left out of the counts")
                stack.append(v)
            elif isinstance(v, list):
                stack.extend(x for x in v if isinstance(x, dict))


class ElasticsearchChangeSource(_Base):
    """Deploy / config / flag events in an index (ECS-style field names)."""

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ElasticsearchChangeSource:
        """A change source from `sources.changes` (kind: elasticsearch)."""
        return cls(fields={**ECS_CHANGE_FIELDS, **(spec.get("fields") or {})},
                   **cls._kwargs(spec))

    def __init__(self, client: Any, index: str, fields: dict[str, str] | None = None,
                 **kw: Any) -> None:
        super().__init__(client, index, fields or ECS_CHANGE_FIELDS, **kw)

    def changes(self, start: pd.Timestamp, end: pd.Timestamp) -> QueryResult:
        """Change events in [start, end], oldest first."""
        query = {"bool": {"filter": [self._range(start, end)]}}
        sort = [{self.fields["time"]: {"order": "asc", "format": "epoch_millis"}},
                {"_shard_doc": "asc"}]
        source = [self.fields[c] for c in CHANGE_COLUMNS if c in self.fields]
        warnings: list[str] = []
        cols, meta = self._scan(query, lambda _n: (query, sort), CHANGE_COLUMNS, None, warnings)
        df = self._frame(cols, CHANGE_COLUMNS)
        body = {"query": query, "sort": sort, "_source": source}
        return QueryResult(df, json.dumps(body, sort_keys=True), self.backend, warnings,
                           meta["partial"], {"index": self.index, "matched": meta["matched"]})

