"""The correlation stage's service ranking reads spans when a span source exists (issue 13a's
run.spans), records them as evidence, and says which evidence is missing."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pandas as pd

from incident_lib.report.display import Section
from incident_lib.sources.base import QueryResult
from incident_lib.stages.correlation import service_ranking

T0 = pd.Timestamp("2026-01-01T10:00:00Z")
BASE = (T0, T0 + pd.Timedelta("20min"))
INC = (T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("30min"))


def _spans() -> pd.DataFrame:
    rows = []
    for i in range(300):
        start = T0 + pd.Timedelta(minutes=i * 0.1)
        db = 300.0 if i >= 200 else 2.0 + (i % 10) * 0.1  # db slow in the incident window
        rows += [{"trace_id": f"t{i}", "span_id": f"{i}f", "parent_id": None,
                  "service": "frontend", "pod": "frontend-1", "operation": "GET /",
                  "start": start, "duration_ms": 10 + db, "status": None},
                 {"trace_id": f"t{i}", "span_id": f"{i}d", "parent_id": f"{i}f",
                  "service": "db", "pod": "db-1", "operation": "select", "start": start,
                  "duration_ms": db, "status": None}]
    return pd.DataFrame(rows)


@dataclass
class StubRun:
    """Just what service_ranking touches: no metrics, no topology, a span source."""

    recorded: dict[str, pd.DataFrame] = field(default_factory=dict)
    incident: Any = field(default_factory=lambda: SimpleNamespace(
        start_ts=BASE[0], end_ts=INC[1], topology={}, service="frontend"))

    def evidence_index(self) -> dict[str, Any]:
        return {}

    def record(self, name: str, res: QueryResult, stage: str) -> pd.DataFrame:
        self.recorded[name] = res.frame
        return res.frame

    @property
    def metrics(self) -> Any:
        empty = pd.DataFrame(columns=["time", "service", "value"])
        return SimpleNamespace(query_signal=lambda *a, **k: QueryResult(empty, "q", "stub"))

    @property
    def signals(self) -> Any:  # Run.signals (issue 13a): the deployment's declared signals
        from incident_lib.core.signals import signals

        return signals()

    @property
    def spans(self) -> Any:
        return SimpleNamespace(spans=lambda start, end: QueryResult(_spans(), "spans q", "stub"))


def test_spans_are_read_recorded_and_rank_the_slow_callee() -> None:
    run = StubRun()
    ctx = Section("Windows", "", {"baseline": BASE, "incident": INC})
    from incident_lib.analysis.rootcause import RankConfig

    out = service_ranking(run, ctx, None, RankConfig(kinds=("trace_slow",)))  # type: ignore[arg-type]
    assert "spans" in run.recorded  # cited like any other evidence
    assert out["ranking"][0]["service"] == "db" and out["ranking"][0]["rank"] == 1
    assert out["calls_from"] == "spans"
    assert out["missing"] == ["metrics", "logs"]  # said, never treated as normal


def _logs(ref: tuple[pd.Timestamp, pd.Timestamp]) -> pd.DataFrame:
    """web and pay log every 6 s; pay fails throughout the period before (an earlier fault)
    and the incident window, never in the normal reference period."""
    rows = []
    for lo, hi, failing in ((ref[0], ref[1], False), (BASE[0], INC[1], True)):
        t = lo
        while t < hi:
            rows.append({"time": t, "service": "web", "level": "INFO", "message": "GET / 200",
                         "template_id": 1, "template": "GET / <*>"})
            err = failing and t.second % 12 == 0
            rows.append({"time": t, "service": "pay", "level": "ERROR" if err else "INFO",
                         "message": "charge failed" if err else "charge ok",
                         "template_id": 3 if err else 2,
                         "template": "charge failed" if err else "charge ok"})
            t += pd.Timedelta("6s")
    return pd.DataFrame(rows)


class NoSpansRun(StubRun):
    spans = None  # type: ignore[assignment]  # no span source configured


def _ranking(reference: dict[str, str] | None) -> dict[str, Any]:
    from incident_lib.analysis.rootcause import RankConfig

    run = NoSpansRun()
    if reference:
        run.incident.topology = {"reference": reference}
    ref = (T0 - pd.Timedelta("60min"), T0 - pd.Timedelta("50min"))
    ctx = Section("Windows", "", {"baseline": BASE, "incident": INC})
    return service_ranking(run, ctx, _logs(ref), RankConfig(kinds=("error_share",)))  # type: ignore[arg-type]


def test_declared_reference_period_is_the_baseline_for_log_evidence() -> None:
    """An earlier fault in the period before hides the culprit; the declared normal period
    does not."""
    without = _ranking(None)
    assert not without["ranking"] or without["ranking"][0]["service"] != "pay"
    assert without["events_baseline"] == "period before"
    ref = {"start": (T0 - pd.Timedelta("60min")).isoformat(),
           "end": (T0 - pd.Timedelta("50min")).isoformat()}
    with_ref = _ranking(ref)
    assert with_ref["ranking"][0]["service"] == "pay"
    assert with_ref["events_baseline"] == "reference period"


def test_reference_overlapping_the_incident_is_not_used_and_said() -> None:
    ref = {"start": INC[0].isoformat(), "end": INC[1].isoformat()}
    out = _ranking(ref)
    assert out["events_baseline"] == "period before"
    assert "overlaps the incident window" in out["note"]


def _checkout_spans_and_logs(fault_from: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """frontend -> cart every 6 s; cart writes "quote ready" in every call until fault_from,
    then stops quoting (a code path that aborts): nothing gets slower, nothing logs an error."""
    spans, logs = [], []
    t, i = T0, 0
    while t < INC[1]:
        tid = f"c{i}"
        spans += [{"trace_id": tid, "span_id": f"{tid}f", "parent_id": None,
                   "service": "frontend", "pod": "frontend-1", "operation": "POST /checkout",
                   "start": t, "duration_ms": 20.0, "status": None},
                  {"trace_id": tid, "span_id": f"{tid}c", "parent_id": f"{tid}f",
                   "service": "cart", "pod": "cart-1", "operation": "quote",
                   "start": t + pd.Timedelta("1ms"), "duration_ms": 15.0, "status": None}]
        lines = ["loaded cart", "quote ready"] if t < fault_from else ["loaded cart"]
        logs += [{"time": t + pd.Timedelta(f"{2 + k}ms"), "service": "cart", "level": "INFO",
                  "message": m, "trace_id": tid, "template_id": m, "template": m}
                 for k, m in enumerate(lines)]
        t, i = t + pd.Timedelta("6s"), i + 1
    return pd.DataFrame(spans), pd.DataFrame(logs)


def _checkout_run() -> tuple[StubRun, pd.DataFrame, pd.Timestamp]:
    """A run whose span source serves the checkout traces; the fault starts at its alert,
    8 minutes into the incident window."""
    alert = INC[0] + pd.Timedelta("8min")
    spans, logs = _checkout_spans_and_logs(alert)

    class CheckoutRun(StubRun):
        spans = SimpleNamespace(spans=lambda a, b: QueryResult(spans, "spans q", "stub"))

    run = CheckoutRun()
    run.incident.alert_ts = alert
    return run, logs, alert


def _behaviour_only(run: StubRun, logs: pd.DataFrame) -> dict[str, Any]:
    from incident_lib.analysis.rootcause import RankConfig

    ctx = Section("Windows", "", {"baseline": BASE, "incident": INC})
    return service_ranking(run, ctx, logs, RankConfig(kinds=("behaviour",)))  # type: ignore[arg-type]


def test_behaviour_is_measured_from_the_alert_and_cited_in_the_suspects() -> None:
    """The fault starts at the alert, 8 minutes into the incident window: measured over the
    whole window the change is diluted; from the alert on, every call changed."""
    run, logs, alert = _checkout_run()
    out = _behaviour_only(run, logs)
    assert out["behaviour_window"][0] == alert.isoformat().replace("+00:00", "Z")
    assert out["ranking"][0]["service"] == "cart"
    cited = out["behaviour"][0]
    assert (cited["service"], cited["context"], cited["emission"]) == ("cart", "quote",
                                                                        "log: quote ready")
    assert (cited["base_share"], cited["incident_share"]) == (1.0, 0.0)
    # without an alert the whole incident window is compared: 80% of it is still normal
    run.incident.alert_ts = None
    diluted = _behaviour_only(run, logs)
    assert not diluted["ranking"] or diluted["behaviour"][0]["incident_share"] > 0.5


def test_a_reference_before_the_alert_serves_behaviour_though_it_overlaps_the_window() -> None:
    """The fault-free period may fall inside the incident window's lead (an earlier onset):
    it is not used for the window-wide kinds, but behaviour compares the firing window only."""
    run, logs, alert = _checkout_run()
    run.incident.topology = {"reference": {"start": INC[0].isoformat(),
                                           "end": (INC[0] + pd.Timedelta("5min")).isoformat()}}
    out = _behaviour_only(run, logs)
    assert "overlaps the incident window" in out["note"]
    assert out["behaviour_baseline"] == "reference period"
    assert out["ranking"][0]["service"] == "cart"
    assert out["behaviour"][0]["base_executions"] == 50  # the 5 reference minutes, 6 s apart


def test_the_stated_service_leads_the_suspects_with_its_behaviour_as_evidence() -> None:
    """The change/anomaly table put a bystander first without a clear lead; the service
    ranking states `cart`: cart leads (its own entry kept, its behaviour added), the others
    follow one rank down; a service absent from the table gets an entry from the ranking."""
    from incident_lib.stages.correlation import stated_first

    table = [{"rank": 1, "service": "web", "change_id": None, "score": 0.4, "margin": 0.05,
              "evidence": [{"kind": "metric", "text": "latency up"}]},
             {"rank": 2, "service": "cart", "change_id": None, "score": 0.35, "margin": 0.1,
              "evidence": [{"kind": "log", "text": "new template"}]}]
    sr = {"ranking": [{"rank": 1, "service": "cart", "score": 2.0, "kinds": {"behaviour": 1.0,
                                                                             "error_share": 1.0}},
                      {"rank": 2, "service": "web", "score": 0.5, "kinds": {"metric": 0.5}}],
          "lead": 1.5,  # as root_cause_of gives it: 2.0 over the next 0.5
          "behaviour": [{"service": "cart", "context": "quote", "emission": "log: quote ready",
                         "base_share": 1.0, "incident_share": 0.0, "base_executions": 200,
                         "incident_executions": 40}]}
    out = stated_first(table, "cart", sr)
    assert [(s["service"], s["rank"]) for s in out] == [("cart", 1), ("web", 2)]
    assert out[0]["margin"] == 1.5 and out[0]["stated_by"] == "service ranking"
    # its score is the ranking's: the table must not show the leader below the next row
    assert (out[0]["score"], out[0]["table_score"]) == (2.0, 0.35)
    kinds = [e["kind"] for e in out[0]["evidence"]]
    assert kinds[0] == "log" and "behaviour" in kinds and "error_share" in kinds
    beh = next(e["text"] for e in out[0]["evidence"] if e["kind"] == "behaviour")
    assert beh == ("in quote: log: quote ready in 0% of 40 executions (normal 100% of 200)")
    alone = stated_first(table[:1], "cart", sr)
    assert alone[0]["service"] == "cart" and alone[0]["score"] == 2.0
    assert alone[0]["change_id"] is None and alone[1]["rank"] == 2


def test_logs_without_a_baseline_say_why_they_confirm_nothing() -> None:
    """Lines only inside the window, and a reference period that overlaps it: nothing can be
    compared, and the corroboration says why (the outcome repeats it)."""
    from incident_lib.analysis.rootcause import RankConfig

    run = NoSpansRun()
    run.incident.topology = {"reference": {"start": INC[0].isoformat(),
                                           "end": INC[1].isoformat()}}
    logs = _logs((T0 - pd.Timedelta("60min"), T0 - pd.Timedelta("50min")))
    logs = logs[logs["time"] >= INC[0]].reset_index(drop=True)
    ctx = Section("Windows", "", {"baseline": BASE, "incident": INC})
    out = service_ranking(run, ctx, logs, RankConfig(kinds=("error_share",)))  # type: ignore[arg-type]
    c = out["corroboration"]
    assert c["measured"] == [] and c["found"] == []
    assert c["unmeasured"] == [
        f"the {len(logs):,} log lines read could not be compared with a baseline (none in the "
        "baseline period, or none in the window)",
        "the declared reference period overlaps the incident window, so it cannot serve as the "
        "baseline (declare one that ends before the window)"]


def test_a_pod_pinned_at_its_cpu_limit_is_named_though_nothing_confirms_harm() -> None:
    """Only a worker pod's CPU moves (5 millicores to half a core for 3 minutes): the ranking
    puts it first on its own saturation, and the corroboration names it as saturated, not as
    a confirmed fault (found stays empty), so the outcome cannot read "no incident found"."""
    from incident_lib.analysis.rootcause import RankConfig

    times = pd.date_range(BASE[0], INC[1], freq="60s")
    hot = [0.5 if INC[0] + pd.Timedelta("2min") <= t < INC[0] + pd.Timedelta("5min") else
           0.005 + 0.0005 * (i % 3) for i, t in enumerate(times)]
    cpu = pd.concat([pd.DataFrame({"time": times, "service": "worker", "pod": "worker-7f-x",
                                   "value": hot}),
                     pd.DataFrame({"time": times, "service": "web", "pod": "web-1",
                                   "value": [0.02 + 0.001 * (i % 4) for i in range(len(times))]})])

    class HotRun(StubRun):
        @property
        def metrics(self) -> Any:
            empty = pd.DataFrame(columns=["time", "service", "value"])
            return SimpleNamespace(query_signal=lambda name, *a, **k: QueryResult(
                cpu if name == "cpu" else empty, "q", "stub"))

        @property
        def spans(self) -> Any:
            return SimpleNamespace(spans=lambda a, b: QueryResult(_spans().iloc[:0], "q", "stub"))

    ctx = Section("Windows", "", {"baseline": BASE, "incident": INC})
    out = service_ranking(HotRun(), ctx, None, RankConfig())  # type: ignore[arg-type]
    assert out["ranking"][0]["service"] == "worker"
    c = out["corroboration"]
    assert c["found"] == []
    assert len(c["saturated"]) == 1 and c["saturated"][0].startswith(
        "worker-7f-x: cpu 0.0055 cores to 0.5 cores")


def test_a_delayed_pod_is_ranked_by_its_slow_links_and_they_confirm_the_fault() -> None:
    """Only the wire slows (a network delay on pod c): the ranking puts c first on its links,
    the suspects cite the slow calls, and the corroboration counts them as a sign of harm."""
    from incident_lib.analysis.rootcause import RankConfig
    from tests.analysis.test_traces import _delay_traces

    class DelayRun(StubRun):
        @property
        def spans(self) -> Any:
            return SimpleNamespace(spans=lambda a, b: QueryResult(_delay_traces("c"), "q",
                                                                  "stub"))

    ctx = Section("Windows", "", {"baseline": BASE, "incident": INC})
    out = service_ranking(DelayRun(), ctx, None, RankConfig())  # type: ignore[arg-type]
    assert out["ranking"][0]["service"] == "c" and out["ranking"][0]["rank"] == 1
    assert set(out["ranking"][0]["kinds"]) == {"trace_link"}
    assert {(r["caller"], r["callee"]) for r in out["links"]} == {("a", "c"), ("b", "c"),
                                                                  ("c", "d")}
    c = out["corroboration"]
    assert any(f.startswith("calls c -> d: 100% of 100 slower than normal on the wire")
               for f in c["found"]), c["found"]
    assert "call slower on the wire" in c["looked_for"]


def test_the_stated_service_cites_its_slow_links_once() -> None:
    """A service stated on its links is cited by the calls that slowed (numbers a responder
    can check), not by its scaled score beside them."""
    from incident_lib.stages.correlation import stated_first

    link = {"caller": "cart", "callee": "price", "base_calls": 100, "incident_calls": 100,
            "base_p50_ms": 1.6, "base_p95_ms": 2.2, "incident_p50_ms": 121.6,
            "slow_share": 1.0, "sig": 50.0, "effect": 0.93}
    other = {**link, "caller": "web", "callee": "search"}
    sr = {"ranking": [{"rank": 1, "service": "cart", "score": 2.0,
                       "kinds": {"trace_link": 1.0, "error_share": 1.0}}],
          "lead": 2.0, "behaviour": [], "links": [link, other]}
    out = stated_first([], "cart", sr)
    ev = out[0]["evidence"]
    assert [e["kind"] for e in ev] == ["trace_link", "error_share"]
    assert ev[0]["text"] == ("calls cart -> price: 100% of 100 slower than normal on the wire "
                             "(link time p50 1.6 ms -> 121.6 ms, baseline p95 2.2 ms over 100 "
                             "calls)")
