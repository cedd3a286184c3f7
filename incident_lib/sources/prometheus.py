"""Real Prometheus over its HTTP API (httpx, called directly; see the class docstring for why).

Range queries are evaluated on the same grid as the files backend (multiples of step inside
[start, end]), chunked so no request asks for more than 11,000 points. Every request has a
timeout; 503 answers and connection errors are retried with exponential backoff, nothing else.
"""

from __future__ import annotations

import math
import ssl
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd

from ..core.config import secret_from_env
from ..core.errors import InputError, QueryError, SourceError
from ..core.signals import get_signal, render_promql, signal_set
from .base import MAX_POINTS, QueryResult, choose_step, nonfinite_warning, time_grid

__all__ = ["PrometheusMetricSource", "DEFAULT_TIMEOUT", "RETRY_STATUS"]

DEFAULT_TIMEOUT = 30.0
RETRY_STATUS = frozenset({503})
_CONNECTION_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError,
                      httpx.WriteError, httpx.RemoteProtocolError)
_TIMEOUTS = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)


def _by_labels(spec: dict[str, Any]) -> list[str]:
    """Grouping labels of a files signal definition (the columns both backends return)."""
    if "by" in spec:
        return list(spec["by"])
    for side in ("num", "den"):
        if side in spec:
            return _by_labels(spec[side])
    return []


def _float(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


class PrometheusMetricSource:
    """MetricSource over the Prometheus HTTP API.

    It calls the API directly with httpx rather than wrapping prometheus-api-client: that
    client's `custom_query_range` returns only `data.result` (the API's `warnings` are lost),
    it has no per-request timeout or 503-only retry policy, it uses GET (long PromQL in the
    URL) and it would add requests + matplotlib + dateparser to the dependencies. httpx is
    already a dependency and takes an injectable transport for tests.
    """

    backend = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_bundle: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        max_points: int = MAX_POINTS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"sources.metrics.url {url[:80]!r} must start with http:// or "
                             "https://")
        if not 1 <= max_points <= MAX_POINTS:
            raise InputError(f"max_points must be between 1 and {MAX_POINTS}")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_points = int(max_points)
        headers = {"Accept": "application/json", "User-Agent": "incident_lib"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        auth = httpx.BasicAuth(username, password or "") if username else None
        verify: ssl.SSLContext | bool = True
        if ca_bundle:
            try:
                verify = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise InputError(f"CA bundle {ca_bundle} cannot be read: {exc}") from None
        self._client = httpx.Client(
            base_url=self.url, headers=headers, auth=auth, verify=verify, transport=transport,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
        )
        self.requests = 0  # number of HTTP requests made (tests and notes read it)

    def __repr__(self) -> str:
        return f"PrometheusMetricSource({self.url!r})"  # never shows credentials

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> PrometheusMetricSource:
        """Build from a config spec: url, token_env, username, password_env, ca_bundle, ..."""
        url = spec.get("url")
        if not url:
            raise InputError("sources.metrics.url is missing: e.g. http://127.0.0.1:9090")
        ca = spec.get("ca_bundle") or secret_from_env(spec, "ca_bundle")
        src = cls(
            str(url),
            token=secret_from_env(spec, "token"),
            username=spec.get("username") or secret_from_env(spec, "username"),
            password=secret_from_env(spec, "password"),
            ca_bundle=str(ca) if ca else None,
            timeout=float(spec.get("timeout", DEFAULT_TIMEOUT)),
            retries=int(spec.get("retries", 3)),
            max_points=int(spec.get("max_points", MAX_POINTS)),
        )
        src.signals = signal_set(spec)  # the deployment's declared signals (PromQL each)
        return src

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    # -- HTTP -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, data: dict[str, str] | None,
                 what: str) -> dict[str, Any]:
        """One API call with timeout and retries (503, connection errors); parsed JSON body."""
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 10.0))
            self.requests += 1
            try:
                if method == "POST":
                    resp = self._client.post(path, data=data)
                else:
                    resp = self._client.get(path, params=data)
            except _TIMEOUTS:
                raise SourceError(f"Prometheus at {self.url} did not answer within "
                                  f"{self.timeout:g} s: {what}") from None
            except _CONNECTION_ERRORS as exc:
                last = f"{type(exc).__name__}: {str(exc)[:120]}"
                continue
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}"
                ra = resp.headers.get("Retry-After", "")
                if ra.isdigit() and attempt < self.retries:
                    time.sleep(min(float(ra), 10.0))
                continue
            return self._decode(resp, what)
        raise SourceError(f"Prometheus at {self.url} unreachable after {self.retries + 1} "
                          f"attempts ({last}): {what}")

    def _decode(self, resp: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code in (400, 422):
            err = f"{body.get('errorType', 'bad_data')}: {str(body.get('error', ''))[:300]}"
            raise QueryError(f"Prometheus rejected the query ({err}): {what}")
        if resp.status_code in (401, 403):
            raise SourceError(f"Prometheus at {self.url} refused the credentials (HTTP "
                              f"{resp.status_code}): check token_env / username / password_env")
        if resp.status_code >= 400 or not isinstance(body, dict) or body.get("status") != "success":
            err = str(body.get("error", "")) if isinstance(body, dict) else ""
            raise SourceError(f"Prometheus at {self.url} answered HTTP {resp.status_code} "
                              f"{err[:200]}: {what}")
        return body

    # -- queries ----------------------------------------------------------------------------

    def services(self) -> list[str]:
        """Values of the `service` label."""
        body = self._request("GET", "/api/v1/label/service/values", None, "label values service")
        return sorted(str(v) for v in body.get("data") or [])

    def query_range(
        self, promql: str, start: pd.Timestamp, end: pd.Timestamp, step: float | None = None,
        by: list[str] | None = None, nan_is_bad: bool = True,
    ) -> QueryResult:
        """Evaluate PromQL on the files backend's grid, chunked to <= max_points per request.

        Non-finite points are dropped and their series named in a warning (NaN only when
        nan_is_bad: in a ratio, NaN is also 0/0, "no traffic", which is not bad data).
        """
        step = float(step) if step else choose_step(start, end)
        if step <= 0:
            raise InputError("step must be positive")
        query = f"{promql} step={step:g}s"
        grid = time_grid(start, end, step)
        warnings: list[str] = []
        points: dict[tuple[tuple[str, str], ...], tuple[list[float], list[float]]] = {}
        chunks = [grid[i:i + self.max_points] for i in range(0, len(grid), self.max_points)]
        for chunk in chunks:
            data = {"query": promql, "start": f"{chunk[0]:.3f}", "end": f"{chunk[-1]:.3f}",
                    "step": f"{step:g}", "timeout": f"{max(1, int(self.timeout))}s"}
            body = self._request("POST", "/api/v1/query_range", data, query)
            for w in body.get("warnings") or []:
                if str(w) not in warnings:
                    warnings.append(str(w))
            for w in body.get("infos") or []:
                if str(w) not in warnings:
                    warnings.append(str(w))
            for series in (body.get("data") or {}).get("result") or []:
                metric = {k: str(v) for k, v in (series.get("metric") or {}).items()
                          if k != "__name__"}
                key = tuple(sorted(metric.items()))
                ts, vs = points.setdefault(key, ([], []))
                for t, v in series.get("values") or []:
                    ts.append(float(t))
                    vs.append(_float(v))
        labels = by if by is not None else sorted({k for key in points for k, _ in key})
        frames = []
        flagged: list[str] = []
        for key in sorted(points):
            t, v = np.asarray(points[key][0]), np.asarray(points[key][1], dtype=float)
            ok = np.isfinite(v)  # absent points, NaN (0/0) and Inf are dropped, as in files
            bad = np.isinf(v) | (np.isnan(v) if nan_is_bad else False)
            if bad.any():
                inner = ",".join(f'{k}="{val}"' for k, val in key)
                flagged.append(f"{{{inner}}}: {int(bad.sum())} of {len(grid)} points "
                               "non-finite")
            if not ok.any():
                continue
            df = pd.DataFrame({"time": pd.to_datetime(t[ok], unit="s", utc=True), "value": v[ok]})
            d = dict(key)
            for name in labels:
                df[name] = d.get(name, "")
            frames.append(df)
        if frames:
            frame = pd.concat(frames, ignore_index=True)[["time", *labels, "value"]]
            frame = frame.sort_values([*labels, "time"], kind="stable", ignore_index=True)
        else:
            frame = pd.DataFrame(columns=["time", *labels, "value"])
            warnings.append(f"no data for {query}")
        notes: dict[str, Any] = {"step": step, "points": int(len(grid)),
                                 "requests": len(chunks),
                                 "start": float(grid[0]) if len(grid) else None,
                                 "end": float(grid[-1]) if len(grid) else None}
        if flagged:
            notes["nonfinite_series"] = flagged[:20]
            warnings.insert(0, nonfinite_warning(flagged))
        return QueryResult(frame, query, self.backend, warnings=warnings, notes=notes)

    def query_signal(
        self,
        signal: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: float,
        filters: dict[str, str] | None = None,
    ) -> QueryResult:
        """Evaluate a named signal's PromQL (filters as escaped literals) every step seconds."""
        declared = getattr(self, "signals", None)
        sig = declared[signal] if declared and signal in declared else get_signal(signal)
        if not sig.promql:
            frame = pd.DataFrame(columns=["time", "service", "value"])
            return QueryResult(frame, f"signal {signal}: no promql declared", self.backend,
                               warnings=[f"signal {signal}: no promql declared: reported as "
                                         "missing, not 0"], notes={"missing": [signal]})
        promql = render_promql(sig, filters)
        return self.query_range(promql, start, end, step, by=_by_labels(sig.files),
                                nan_is_bad=sig.files.get("op") != "ratio")
