"""Log lines for the demo and scenarios (ECS NDJSON), vectorised so millions of lines stay quick.

Each service has base templates whose weights read a `Ctx`: the service's failure share
(`c.f`), minutes (`c.t`) and per-cause failure channels (`c["pool"]`, `c["up:payments"]`).
A story adds failure channels and extra templates; callers get a generic error template per
callee they call, weighted by the callee's failure channel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.storage import atomic_write_with
from .story import OFFSET, SCRAPE, Story

__all__ = ["write_logs", "templates_for", "upstream_template", "Ctx", "TEMPLATES", "tpl"]

LPR = {"frontend": 1.0, "checkout": 1.6, "payments": 1.5, "inventory": 0.8, "postgres": 0.4}
Fmt = Callable[[int, np.random.Generator], list[str]]


def _ints(rng: np.random.Generator, k: int, lo: int, hi: int) -> np.ndarray:
    return rng.integers(lo, hi, size=k)


def _ms(rng: np.random.Generator, k: int, median: float) -> np.ndarray:
    return np.maximum(1, rng.lognormal(np.log(median), 0.5, size=k)).astype(int)


def _orders(rng: np.random.Generator, k: int) -> list[str]:
    return [f"ord-{x:08x}" for x in _ints(rng, k, 0, 2**32)]


def _f(fmt: str, **cols: Callable[[np.random.Generator, int], object]) -> Fmt:
    """A template renderer: fmt with fields filled from vectorised generators."""

    def render(k: int, rng: np.random.Generator) -> list[str]:
        if not cols:
            return [fmt] * k
        arrays = {name: gen(rng, k) for name, gen in cols.items()}
        names = list(arrays)
        return [fmt.format(**dict(zip(names, vals, strict=True)))
                for vals in zip(*arrays.values(), strict=True)]

    return render


def _g(lo: int, hi: int) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, k: _ints(rng, k, lo, hi)


def _lat(median: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, k: _ms(rng, k, median)


def _choice(*opts: str) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, k: np.array(opts)[rng.integers(0, len(opts), size=k)]


_ORDER = lambda rng, k: _orders(rng, k)  # noqa: E731


def tpl(fmt: str, **cols: Callable[[np.random.Generator, int], object]) -> Fmt:
    """Public alias of the template renderer for scenario modules."""
    return _f(fmt, **cols)


GEN = {"int": _g, "lat": _lat, "choice": _choice, "order": lambda: _ORDER}
ON = lambda c: np.ones_like(c.f)  # noqa: E731
# (level, weight(f, tmin), renderer, http status or None)
TEMPLATES: dict[str, list[tuple[str, Callable, Fmt, int | None]]] = {
    "frontend": [
        ("info", lambda c: 5 * ON(c), _f("GET /api/products/{sku} 200 {ms}ms",
                                               sku=_g(1000, 9999), ms=_lat(60)), 200),
        ("info", lambda c: 2 * ON(c), _f("GET /api/cart 200 {ms}ms", ms=_lat(40)), 200),
        ("info", lambda c: 1 - 0.9 * c.f,
         _f("POST /api/checkout 200 {ms}ms", ms=_lat(180)), 200),
        ("error", lambda c: 0.9 * c["up:checkout"],
         _f("POST /api/checkout 502 {ms}ms upstream=checkout", ms=_lat(5100)), 502),
        ("debug", lambda c: 0.8 * ON(c), _f("rendered page {page} in {ms}ms",
                                                  page=_choice("home", "product", "cart", "search"),
                                                  ms=_lat(12)), None),
        ("warn", lambda c: 0.15 * ON(c),
         _f("slow response from recommendations service: {ms}ms", ms=_lat(900)), None),
        ("error", lambda c: 0.01 * ON(c),
         _f("failed to refresh feature flags: context deadline exceeded"), None),
        ("info", lambda c: 0.3 * (c.t >= c.recs_from), _f("recs-v2 enabled for session {s}",
                                                  s=_g(10**6, 10**7)), None),
    ],
    "checkout": [
        ("info", lambda c: 2 * ON(c),
         _f("order {o} created for customer {c}: {n} items, total {a}.{b:02d} EUR",
            o=_ORDER, c=_g(10000, 99999), n=_g(1, 8), a=_g(5, 400), b=_g(0, 100)), 200),
        ("info", lambda c: 2 * (1 - 0.9 * c.f),
         _f("payment authorized for order {o} in {ms}ms", o=_ORDER, ms=_lat(45)), 200),
        ("error", lambda c: 2 * 0.9 * c["up:payments"],
         _f("payment authorization failed for order {o}: payments returned 503 Service "
            "Unavailable after {ms}ms", o=_ORDER, ms=_lat(5050)), 503),
        ("info", lambda c: 1.5 * ON(c),
         _f("reserved {n} items for order {o}", n=_g(1, 8), o=_ORDER), None),
        ("warn", lambda c: 0.3 * (c["up:payments"] > 0.05),
         _f("circuit breaker payments: {k} failures in the last 30s", k=_g(20, 200)), None),
        ("warn", lambda c: 0.05 * ON(c),
         _f("retrying inventory reservation for order {o}", o=_ORDER), None),
    ],
    "payments": [
        ("info", lambda c: 2 * (1 - c.f),
         _f("authorized payment {p} for order {o}: {a}.{b:02d} EUR via {m}", p=_g(10**7, 10**8),
            o=_ORDER, a=_g(5, 400), b=_g(0, 100), m=_choice("card", "paypal", "sepa")), 200),
        ("debug", lambda c: 1.5 * (1 - c.f),
         _f("db query select_account took {ms}ms", ms=_lat(4)), None),
        ("error", lambda c: 1.2 * c["pool"],
         _f("could not acquire database connection within 5000ms: pool exhausted "
            "(20/20 in use, {w} waiting)", w=_g(3, 60)), 503),
        ("error", lambda c: 1.0 * c["pool"],
         _f("authorize failed for order {o}: HikariPool-1 - Connection is not available, "
            "request timed out after 5000ms", o=_ORDER), 503),
        ("warn", lambda c: 0.6 * c["pool"],
         _f("retrying authorization for order {o}, attempt {a}/3", o=_ORDER, a=_g(1, 4)), None),
        ("info", lambda c: 0.1 * ON(c),
         _f("settlement batch {b} queued with {n} payments", b=_g(1000, 9999), n=_g(10, 500)),
         None),
        ("warn", lambda c: 0.02 * ON(c),
         _f("slow query select_account took {ms}ms", ms=_lat(800)), None),
    ],
    "inventory": [
        ("info", lambda c: 3 * ON(c),
         _f("stock for sku {s}: {n} units", s=_g(1000, 9999), n=_g(0, 500)), 200),
        ("debug", lambda c: 2 * ON(c),
         _f("cache {h} for sku {s}", h=_choice("hit", "hit", "hit", "miss"), s=_g(1000, 9999)),
         None),
        ("warn", lambda c: 0.05 + 2.0 * ((c.t >= 50) & (c.t < 53)),
         _f("slow query on stock table: {ms}ms", ms=_lat(400)), None),
    ],
    "postgres": [
        ("info", lambda c: 3 * ON(c),
         _f("duration: {ms}.{us:03d} ms  statement: SELECT balance FROM accounts WHERE id = {i}",
            ms=_g(0, 9), us=_g(0, 1000), i=_g(1, 10**6)), None),
        ("info", lambda c: 0.5 * ON(c),
         _f("connection authorized: user={u} database={d}", u=_choice("payments", "inventory"),
            d=_choice("shop")), None),
        ("info", lambda c: 0.02 * ON(c),
         _f("checkpoint complete: wrote {n} buffers ({p}.{q}%)", n=_g(100, 9000), p=_g(0, 9),
            q=_g(0, 9)), None),
    ],
}


class Ctx:
    """What a template weight sees: the service's failure share, minutes, and cause channels."""

    def __init__(self, t: np.ndarray, ts: np.ndarray, m: np.ndarray,
                 chans: dict[str, np.ndarray], f: np.ndarray, recs_from: float) -> None:
        self._t, self._ts, self._chans = t, ts, chans
        self.t, self.f, self.recs_from = m, f, recs_from

    def __getitem__(self, name: str) -> np.ndarray:
        """Share failing for one cause at each log line's time (zeros if absent)."""
        chan = self._chans.get(name)
        return np.zeros_like(self.f) if chan is None else np.interp(self._t, self._ts, chan)


def upstream_template(caller: str, callee: str, msg: str | None) -> tuple:
    """A caller's error template for failed calls to callee (weight from `up:<callee>`)."""
    status = 502 if caller == "frontend" else 503
    text = msg or (f"call to {callee} failed: 503 Service Unavailable after {{ms}}ms "
                   "(request {o})")
    key = f"up:{callee}"
    return ("error", lambda c: 1.5 * c[key], _f(text, ms=_lat(5000), o=_ORDER), status)


def templates_for(svc: str, story: Story) -> list[tuple]:
    """Base templates of svc, generic upstream-failure templates, then the story's extras."""
    base = list(TEMPLATES.get(svc, [("info", lambda c: 3 * ON(c),
                                     _f(f"{svc}: processed job {{j}} in {{ms}}ms",
                                        j=_g(1000, 99999), ms=_lat(300)), None)]))
    covered = {"frontend": {"checkout"}, "checkout": {"payments"}}.get(svc, set())
    for callee in story.calls.get(svc, []):
        if callee not in covered:
            base.append(upstream_template(svc, callee, story.upstream_msg.get(callee)))
    return base + list(story.extra_templates.get(svc, []))


def _hosts(svc: str, tmin: np.ndarray, rng: np.random.Generator, story: Story) -> np.ndarray:
    """Replica names per line: svc-<generation hash>-<a|b|c>."""
    pick = rng.integers(0, 3, size=len(tmin))
    if svc not in story.host_gens:
        return np.array([f"{svc}-7f9c-{c}" for c in "abc"])[pick]
    minutes, hashes = story.host_gens[svc]
    gen = np.searchsorted(np.asarray(minutes, dtype=float), tmin, side="right")
    names = np.array([[f"{svc}-{h}-{c}" for c in "abc"] for h in hashes])
    return names[gen, pick]


def write_logs(path: Path, rng: np.random.Generator, size: int, ts: np.ndarray,
               tmin: np.ndarray, story: Story, season: np.ndarray) -> None:
    """Write `size` log lines (plus a few deploy lines) as ECS NDJSON, sorted by time."""

    services = story.services
    fails = {s: story.fail(s) for s in services}
    weights = np.vstack([story.base_rps[s] * story.log_rate.get(s, LPR.get(s, 1.0)) * season
                         * (1 + fails[s]) * story.ones(story.rps_mult, s) for s in services])
    counts = rng.multinomial(size, (weights / weights.sum()).ravel()).reshape(weights.shape)
    parts = []
    for i, svc in enumerate(services):
        k = int(counts[i].sum())
        t = np.repeat(ts - OFFSET, counts[i]) + rng.uniform(0, SCRAPE, size=k)
        m = (t - ts[0] + OFFSET) / 60.0
        f = np.interp(t, ts, fails[svc])
        ctx = Ctx(t, ts, m, story.channels(svc), f, story.recs_from)
        specs = templates_for(svc, story)
        w = np.vstack([np.broadcast_to(spec[1](ctx), (k,)) for spec in specs]).T
        cw = np.cumsum(w, axis=1)
        choice = (cw < (rng.uniform(0, 1, size=k) * cw[:, -1])[:, None]).sum(axis=1)
        msg = np.empty(k, dtype=object)
        level = np.empty(k, dtype=object)
        status = np.full(k, np.nan)
        pinned: list[tuple[np.ndarray, str]] = []
        for j, (lvl, _, render, code, *host) in enumerate(specs):
            idx = np.nonzero(choice == j)[0]
            msg[idx] = render(len(idx), rng)
            level[idx] = lvl
            if code is not None:
                status[idx] = code
            if host:  # a template only one host logs (e.g. its disk is full)
                pinned.append((idx, host[0]))
        hosts = _hosts(svc, m, rng, story)
        for idx, host in pinned:
            hosts = hosts.astype(object)
            hosts[idx] = host
        parts.append(pd.DataFrame({"t": t, "service.name": svc, "log.level": level,
                                   "message": msg, "host.name": hosts,
                                   "http.response.status_code": status}))
    extra = _deploy_lines(ts, story)
    df = pd.concat([*parts, extra], ignore_index=True).sort_values("t", kind="stable")
    n = len(df)
    hexs = rng.bytes(16 * n).hex()
    df["trace.id"] = [hexs[i * 32:(i + 1) * 32] for i in range(n)]
    millis = (df["t"].to_numpy(dtype=float) * 1000).astype("datetime64[ms]")
    stamp = np.datetime_as_string(millis, unit="ms")
    df.insert(0, "@timestamp", np.char.add(stamp.astype(str), "Z"))
    df = df.drop(columns=["t"])
    df["http.response.status_code"] = df["http.response.status_code"].astype("Int64")

    def _write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            for lo in range(0, n, 250_000):
                chunk = df.iloc[lo:lo + 250_000]
                fh.write(chunk.to_json(orient="records", lines=True, force_ascii=False))

    atomic_write_with(path, _write)


def _deploy_lines(ts: np.ndarray, story: Story) -> pd.DataFrame:
    """Shutdown and startup lines of every replica at each deploy or rollback of the story."""

    t0 = ts[0] - OFFSET
    rows = []
    for minute, svc, old, new, start_msg in story.deploy_lines:
        for c in "abc":
            at = t0 + minute * 60
            rows.append((at + 5, svc, "info", "received SIGTERM, draining connections",
                         f"{svc}-{old}-{c}", np.nan))
            rows.append((at + 30, svc, "info", start_msg, f"{svc}-{new}-{c}", np.nan))
    return pd.DataFrame(rows, columns=["t", "service.name", "log.level", "message", "host.name",
                                       "http.response.status_code"])
