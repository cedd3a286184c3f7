"""Log lines for the demo incident (ECS NDJSON), vectorised so millions of lines stay quick."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .storage import atomic_write_with

__all__ = ["write_logs"]

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
ON = lambda f, t: np.ones_like(f)  # noqa: E731
# (level, weight(f, tmin), renderer, http status or None)
TEMPLATES: dict[str, list[tuple[str, Callable, Fmt, int | None]]] = {
    "frontend": [
        ("info", lambda f, t: 5 * ON(f, t), _f("GET /api/products/{sku} 200 {ms}ms",
                                               sku=_g(1000, 9999), ms=_lat(60)), 200),
        ("info", lambda f, t: 2 * ON(f, t), _f("GET /api/cart 200 {ms}ms", ms=_lat(40)), 200),
        ("info", lambda f, t: 1 - 0.9 * f, _f("POST /api/checkout 200 {ms}ms", ms=_lat(180)), 200),
        ("error", lambda f, t: 0.9 * f, _f("POST /api/checkout 502 {ms}ms upstream=checkout",
                                           ms=_lat(5100)), 502),
        ("debug", lambda f, t: 0.8 * ON(f, t), _f("rendered page {page} in {ms}ms",
                                                  page=_choice("home", "product", "cart", "search"),
                                                  ms=_lat(12)), None),
        ("warn", lambda f, t: 0.15 * ON(f, t),
         _f("slow response from recommendations service: {ms}ms", ms=_lat(900)), None),
        ("error", lambda f, t: 0.01 * ON(f, t),
         _f("failed to refresh feature flags: context deadline exceeded"), None),
        ("info", lambda f, t: 0.3 * (t >= 96), _f("recs-v2 enabled for session {s}",
                                                  s=_g(10**6, 10**7)), None),
    ],
    "checkout": [
        ("info", lambda f, t: 2 * ON(f, t),
         _f("order {o} created for customer {c}: {n} items, total {a}.{b:02d} EUR",
            o=_ORDER, c=_g(10000, 99999), n=_g(1, 8), a=_g(5, 400), b=_g(0, 100)), 200),
        ("info", lambda f, t: 2 * (1 - 0.9 * f),
         _f("payment authorized for order {o} in {ms}ms", o=_ORDER, ms=_lat(45)), 200),
        ("error", lambda f, t: 2 * 0.9 * f,
         _f("payment authorization failed for order {o}: payments returned 503 Service "
            "Unavailable after {ms}ms", o=_ORDER, ms=_lat(5050)), 503),
        ("info", lambda f, t: 1.5 * ON(f, t),
         _f("reserved {n} items for order {o}", n=_g(1, 8), o=_ORDER), None),
        ("warn", lambda f, t: 0.3 * (f > 0.05),
         _f("circuit breaker payments: {k} failures in the last 30s", k=_g(20, 200)), None),
        ("warn", lambda f, t: 0.05 * ON(f, t),
         _f("retrying inventory reservation for order {o}", o=_ORDER), None),
    ],
    "payments": [
        ("info", lambda f, t: 2 * (1 - f),
         _f("authorized payment {p} for order {o}: {a}.{b:02d} EUR via {m}", p=_g(10**7, 10**8),
            o=_ORDER, a=_g(5, 400), b=_g(0, 100), m=_choice("card", "paypal", "sepa")), 200),
        ("debug", lambda f, t: 1.5 * (1 - f),
         _f("db query select_account took {ms}ms", ms=_lat(4)), None),
        ("error", lambda f, t: 1.2 * f,
         _f("could not acquire database connection within 5000ms: pool exhausted "
            "(20/20 in use, {w} waiting)", w=_g(3, 60)), 503),
        ("error", lambda f, t: 1.0 * f,
         _f("authorize failed for order {o}: HikariPool-1 - Connection is not available, "
            "request timed out after 5000ms", o=_ORDER), 503),
        ("warn", lambda f, t: 0.6 * f,
         _f("retrying authorization for order {o}, attempt {a}/3", o=_ORDER, a=_g(1, 4)), None),
        ("info", lambda f, t: 0.1 * ON(f, t),
         _f("settlement batch {b} queued with {n} payments", b=_g(1000, 9999), n=_g(10, 500)),
         None),
        ("warn", lambda f, t: 0.02 * ON(f, t),
         _f("slow query select_account took {ms}ms", ms=_lat(800)), None),
    ],
    "inventory": [
        ("info", lambda f, t: 3 * ON(f, t),
         _f("stock for sku {s}: {n} units", s=_g(1000, 9999), n=_g(0, 500)), 200),
        ("debug", lambda f, t: 2 * ON(f, t),
         _f("cache {h} for sku {s}", h=_choice("hit", "hit", "hit", "miss"), s=_g(1000, 9999)),
         None),
        ("warn", lambda f, t: 0.05 + 2.0 * ((t >= 50) & (t < 53)),
         _f("slow query on stock table: {ms}ms", ms=_lat(400)), None),
    ],
    "postgres": [
        ("info", lambda f, t: 3 * ON(f, t),
         _f("duration: {ms}.{us:03d} ms  statement: SELECT balance FROM accounts WHERE id = {i}",
            ms=_g(0, 9), us=_g(0, 1000), i=_g(1, 10**6)), None),
        ("info", lambda f, t: 0.5 * ON(f, t),
         _f("connection authorized: user={u} database={d}", u=_choice("payments", "inventory"),
            d=_choice("shop")), None),
        ("info", lambda f, t: 0.02 * ON(f, t),
         _f("checkpoint complete: wrote {n} buffers ({p}.{q}%)", n=_g(100, 9000), p=_g(0, 9),
            q=_g(0, 9)), None),
    ],
}


def _hosts(svc: str, tmin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pick = rng.integers(0, 3, size=len(tmin))
    if svc != "payments":
        return np.array([f"{svc}-7f9c-{c}" for c in "abc"])[pick]
    from .demo import DEPLOY_MIN, ROLLBACK_MIN

    gen = np.where(tmin < DEPLOY_MIN, 0, np.where(tmin < ROLLBACK_MIN, 1, 2))
    names = np.array([[f"payments-{h}-{c}" for c in "abc"] for h in ("6b7d4", "8f2a1", "5d0e9")])
    return names[gen, pick]


def write_logs(path: Path, rng: np.random.Generator, size: int, ts: np.ndarray,
               tmin: np.ndarray, p_pay: np.ndarray, season: np.ndarray) -> None:
    """Write `size` log lines (plus a few deploy lines) as ECS NDJSON, sorted by time."""
    from .demo import BASE_RPS, OFFSET, SCRAPE, SERVICES, _fail_share

    weights = np.vstack([BASE_RPS[s] * LPR[s] * season * (1 + _fail_share(s, p_pay))
                         for s in SERVICES])
    counts = rng.multinomial(size, (weights / weights.sum()).ravel()).reshape(weights.shape)
    parts = []
    for i, svc in enumerate(SERVICES):
        k = int(counts[i].sum())
        t = np.repeat(ts - OFFSET, counts[i]) + rng.uniform(0, SCRAPE, size=k)
        m = (t - ts[0] + OFFSET) / 60.0
        f = np.interp(t, ts, _fail_share(svc, p_pay))
        specs = TEMPLATES[svc]
        w = np.vstack([np.broadcast_to(spec[1](f, m), (k,)) for spec in specs]).T
        cw = np.cumsum(w, axis=1)
        choice = (cw < (rng.uniform(0, 1, size=k) * cw[:, -1])[:, None]).sum(axis=1)
        msg = np.empty(k, dtype=object)
        level = np.empty(k, dtype=object)
        status = np.full(k, np.nan)
        for j, (lvl, _, render, code) in enumerate(specs):
            idx = np.nonzero(choice == j)[0]
            msg[idx] = render(len(idx), rng)
            level[idx] = lvl
            if code is not None:
                status[idx] = code
        parts.append(pd.DataFrame({"t": t, "service.name": svc, "log.level": level,
                                   "message": msg, "host.name": _hosts(svc, m, rng),
                                   "http.response.status_code": status}))
    extra = _deploy_lines(ts)
    df = pd.concat([*parts, extra], ignore_index=True).sort_values("t", kind="stable")
    n = len(df)
    hexs = rng.bytes(16 * n).hex()
    df["trace.id"] = [hexs[i * 32:(i + 1) * 32] for i in range(n)]
    stamp = np.datetime_as_string((df["t"].to_numpy() * 1000).astype("datetime64[ms]"), unit="ms")
    df.insert(0, "@timestamp", np.char.add(stamp.astype(str), "Z"))
    df = df.drop(columns=["t"])
    df["http.response.status_code"] = df["http.response.status_code"].astype("Int64")

    def _write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            for lo in range(0, n, 250_000):
                chunk = df.iloc[lo:lo + 250_000]
                fh.write(chunk.to_json(orient="records", lines=True, force_ascii=False))

    atomic_write_with(path, _write)


def _deploy_lines(ts: np.ndarray) -> pd.DataFrame:
    from .demo import DEPLOY_MIN, OFFSET, ROLLBACK_MIN

    t0 = ts[0] - OFFSET
    rows = []
    for minute, old, new, ver in ((DEPLOY_MIN, "6b7d4", "8f2a1", "2.14.0"),
                                  (ROLLBACK_MIN, "8f2a1", "5d0e9", "2.13.2")):
        for c in "abc":
            at = t0 + minute * 60
            rows.append((at + 5, "payments", "info", "received SIGTERM, draining connections",
                         f"payments-{old}-{c}", np.nan))
            rows.append((at + 30, "payments", "info",
                         f"starting payments version {ver} with db pool max=20",
                         f"payments-{new}-{c}", np.nan))
    return pd.DataFrame(rows, columns=["t", "service.name", "log.level", "message", "host.name",
                                       "http.response.status_code"])
