"""Per-operation behaviour (analysis.behaviour): what a responder would check on the result."""

from __future__ import annotations

import itertools

import pandas as pd

from incident_lib.analysis.behaviour import (
    behaviour_evidence,
    collapse_repeats,
    executions,
    parameter_siblings,
)
from incident_lib.analysis.templates import mine_templates

T0 = pd.Timestamp("2024-05-01 10:00", tz="UTC")
BASE = (T0, T0 + pd.Timedelta("10min"))
INC = (BASE[1], BASE[1] + pd.Timedelta("5min"))
_ids = itertools.count()


def _trace(at: pd.Timestamp, *, a_logs: list[tuple[str, str]], b_called: bool = True,
           op: str = "/checkout", span_ids: bool = False
           ) -> tuple[list[dict], list[dict]]:
    """front -> svc-a (internal span `db`, writes a_logs) -> svc-b; returns (spans, logs)."""
    tid = f"t{next(_ids)}"
    f, a, d, b = (f"{tid}-{x}" for x in "fadb")
    spans = [
        {"trace_id": tid, "span_id": f, "parent_id": None, "service": "front", "pod": "front-1",
         "operation": f"GET {op}", "start": at, "duration_ms": 40.0, "status": None},
        {"trace_id": tid, "span_id": a, "parent_id": f, "service": "svc-a", "pod": "svc-a-1",
         "operation": op, "start": at + pd.Timedelta("2ms"), "duration_ms": 30.0,
         "status": None},
        {"trace_id": tid, "span_id": d, "parent_id": a, "service": "svc-a", "pod": "svc-a-1",
         "operation": "db", "start": at + pd.Timedelta("3ms"), "duration_ms": 5.0,
         "status": None},
    ]
    if b_called:
        spans.append({"trace_id": tid, "span_id": b, "parent_id": a, "service": "svc-b",
                      "pod": "svc-b-1", "operation": "/price", "start": at + pd.Timedelta("10ms"),
                      "duration_ms": 10.0, "status": None})
    logs = [{"time": at + pd.Timedelta(f"{5 + i}ms"), "service": "svc-a", "level": level,
             "message": msg, "host": "h", "trace_id": tid, "status": None,
             **({"span_id": a} if span_ids else {})}
            for i, (level, msg) in enumerate(a_logs)]
    logs.append({"time": at + pd.Timedelta("1ms"), "service": "front", "level": "INFO",
                 "message": f"request {tid} received", "host": "h", "trace_id": tid,
                 "status": None, **({"span_id": f} if span_ids else {})})
    return spans, logs


def _frames(parts: list[tuple[list[dict], list[dict]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    spans = pd.DataFrame([s for p in parts for s in p[0]])
    logs = pd.DataFrame([x for p in parts for x in p[1]])
    ids, texts = mine_templates(logs["message"].astype(str).tolist())
    return spans, logs.assign(template_id=ids, template=[texts[i] for i in ids])


def _times(win: tuple[pd.Timestamp, pd.Timestamp], n: int) -> list[pd.Timestamp]:
    step = (win[1] - win[0]) / (n + 1)
    return [win[0] + step * (i + 1) for i in range(n)]


def _row(out: pd.DataFrame, service: str) -> pd.Series:
    hit = out[out["service"] == service]
    assert len(hit) == 1, out
    return hit.iloc[0]


OK = [("INFO", "loaded cart 17 for user 4"), ("INFO", "price quote ready for cart 17")]


def test_an_operation_that_stops_writing_its_line_in_every_call_is_flagged_and_cited() -> None:
    parts = [_trace(t, a_logs=OK) for t in _times(BASE, 40)]
    # the fault: svc-a aborts after loading the cart, never quotes, never calls svc-b
    parts += [_trace(t, a_logs=OK[:1], b_called=False) for t in _times(INC, 20)]
    spans, logs = _frames(parts)
    out = behaviour_evidence(spans, logs, BASE, INC)
    a = _row(out, "svc-a")
    assert a["behaviour"] > 0.8  # every execution changed; the bound is still close to 1
    assert a["context"] == "/checkout"
    assert a["base_share"] == 1.0 and a["incident_share"] == 0.0
    assert a["base_executions"] == 40 and a["incident_executions"] == 20
    # the front end's own behaviour did not change: it is not blamed for its callee
    assert out.loc[out["service"] == "front", "behaviour"].sum() == 0.0


def test_a_change_of_request_mix_is_not_a_change_of_behaviour() -> None:
    # normal: mostly /checkout; incident: mostly /browse (svc-a writes other lines there)
    browse = [("INFO", "listing 20 items for user 4")]
    parts = [_trace(t, a_logs=OK) for t in _times(BASE, 36)]
    parts += [_trace(t, a_logs=browse, op="/browse", b_called=False) for t in _times(BASE, 4)]
    parts += [_trace(t, a_logs=OK) for t in _times(INC, 4)]
    parts += [_trace(t, a_logs=browse, op="/browse", b_called=False) for t in _times(INC, 36)]
    spans, logs = _frames(parts)
    out = behaviour_evidence(spans, logs, BASE, INC)
    assert out["behaviour"].sum() == 0.0, out


def test_a_new_error_in_every_call_counts_and_a_recovering_operation_does_not() -> None:
    err = [("INFO", "loaded cart 17 for user 4"), ("ERROR", "no price for cart 17: failed")]
    # svc-a starts failing; in the same window nothing else changes
    parts = [_trace(t, a_logs=OK) for t in _times(BASE, 30)]
    parts += [_trace(t, a_logs=err) for t in _times(INC, 15)]
    spans, logs = _frames(parts)
    failing = _row(behaviour_evidence(spans, logs, BASE, INC), "svc-a")
    assert failing["behaviour"] > 0.7
    # cited: the error line now in every call, or the quote line it replaced, gone from all
    assert {failing["base_share"], failing["incident_share"]} == {0.0, 1.0}
    # the other way round: the normal period was the failing one, the incident recovered
    parts = [_trace(t, a_logs=err) for t in _times(BASE, 30)]
    parts += [_trace(t, a_logs=OK) for t in _times(INC, 15)]
    spans, logs = _frames(parts)
    out = behaviour_evidence(spans, logs, BASE, INC)
    assert out.loc[out["service"] == "svc-a", "behaviour"].sum() == 0.0, out


def test_a_swapped_parameter_value_is_not_a_change_of_behaviour() -> None:
    def quote(kind: str) -> list[tuple[str, str]]:
        return [("INFO", "loaded cart 17 for user 4"), ("INFO", f"price quote for train {kind}")]
    parts = [_trace(t, a_logs=quote("DongChe")) for t in _times(BASE, 30)]
    parts += [_trace(t, a_logs=quote("GaoTie")) for t in _times(INC, 15)]
    spans, logs = _frames(parts)
    assert len(set(logs["template_id"])) == 4  # the miner kept the value as a constant
    out = behaviour_evidence(spans, logs, BASE, INC)
    assert out["behaviour"].sum() == 0.0, out


def test_parameter_siblings_merge_one_token_apart_and_nothing_else() -> None:
    t = {"a": "price quote for train DongChe", "b": "price quote for train GaoTie",
         "c": "no price quote for this cart", "d": "price quote for bus GaoTie today",
         "e": "x y", "f": "x z"}
    sib = parameter_siblings(t)
    assert sib["a"] == sib["b"]
    assert len({sib["a"], sib["c"], sib["d"]}) == 3
    assert sib["e"] != sib["f"]  # too short to tell a parameter from the message


def test_a_list_of_another_length_or_a_line_cut_elsewhere_is_the_same_event() -> None:
    def sold(n: int, cut: int | None = None) -> str:
        items = ", ".join(["Ticket(seat=<*>, from=shanghai, to=suzhou)"] * n)
        text = f"<*> INFO [distributeSeat][Left ticket info][sold=[{items}]]"
        return " ".join(text.split()[:cut]) if cut else text

    t = {"a": sold(3), "b": sold(200), "c": sold(150, cut=300), "d": sold(120, cut=301),
         "e": "<*> INFO [distributeSeat][Create seat][date <*> train <*>]",
         "f": "<*> INFO [getRoute][Route ids][ids=[<*>, <*>, <*>]]",
         "g": "<*> INFO [getRoute][Route ids][ids=[<*>]]"}
    sib = parameter_siblings(t)
    assert sib["a"] == sib["b"] == sib["c"] == sib["d"]
    assert sib["e"] != sib["a"]
    assert sib["f"] != sib["g"]  # one id and three ids: a list of one is not a repeat


def test_a_list_of_single_word_values_is_a_parameter_but_an_exception_text_is_not() -> None:
    t = {"a": "<*> INFO [queryForTravel][stations: [shanghai, suzhou] distances: [<*>, <*>]]",
         "b": "<*> INFO [queryForTravel][stations: [shanghai, nanjing, taiyuan] distances: "
              "[<*>, <*>, <*>]]",
         "c": "<*> ERROR threw exception [Request failed; nested exception is Timeout: a, b]",
         "d": "<*> ERROR threw exception [Request failed; nested exception is Refused: c, d]"}
    sib = parameter_siblings(t)
    assert sib["a"] == sib["b"]
    assert sib["c"] != sib["d"]  # words with spaces between the commas: not a list of values


def test_requests_for_another_route_are_not_a_change_of_behaviour() -> None:
    def route(stations: str) -> list[tuple[str, str]]:
        return [("INFO", "loaded cart 17 for user 4"),
                ("INFO", f"query stations [{stations}] for the trip")]
    parts = [_trace(t, a_logs=route("shanghai, suzhou")) for t in _times(BASE, 30)]
    parts += [_trace(t, a_logs=route("shanghai, nanjing, taiyuan")) for t in _times(INC, 15)]
    spans, logs = _frames(parts)
    out = behaviour_evidence(spans, logs, BASE, INC)
    assert out["behaviour"].sum() == 0.0, out


def test_collapse_repeats_keeps_one_copy_of_each_repeated_run() -> None:
    assert collapse_repeats("a T(x, y), T(x, y), T(x, y), end".split()) == \
        "a T(x, y), end".split()
    assert collapse_repeats("a a a b".split()) == ["a", "b"]
    assert collapse_repeats("a b a b a b c a".split()) == ["a", "b", "c", "a"]
    assert collapse_repeats("no repeat here".split()) == ["no", "repeat", "here"]


def test_a_longer_list_in_every_call_is_not_a_change_of_behaviour() -> None:
    def listing(n: int) -> list[tuple[str, str]]:
        items = " ".join(["seat <*> taken,"] * n)
        return [("INFO", "loaded cart 17 for user 4"), ("INFO", f"sold so far: {items} done")]
    parts = [_trace(t, a_logs=listing(4)) for t in _times(BASE, 30)]
    parts += [_trace(t, a_logs=listing(9)) for t in _times(INC, 15)]
    spans, logs = _frames(parts)
    out = behaviour_evidence(spans, logs, BASE, INC)
    assert out["behaviour"].sum() == 0.0, out


def test_logs_attach_by_span_id_when_they_carry_one() -> None:
    parts = [_trace(t, a_logs=OK, span_ids=True) for t in _times(BASE, 30)]
    parts += [_trace(t, a_logs=OK[:1], span_ids=True) for t in _times(INC, 15)]
    spans, logs = _frames(parts)
    # times that would not place the lines inside svc-a's span: only the span id can
    logs.loc[logs["service"] == "svc-a", "time"] += pd.Timedelta("5s")
    a = _row(behaviour_evidence(spans, logs, BASE, INC), "svc-a")
    assert a["behaviour"] > 0.8 and a["emission"].startswith("log: price quote")


def test_too_few_executions_or_no_spans_give_no_evidence() -> None:
    parts = [_trace(t, a_logs=OK) for t in _times(BASE, 2)]
    parts += [_trace(t, a_logs=OK[:1], b_called=False) for t in _times(INC, 2)]
    spans, logs = _frames(parts)
    assert behaviour_evidence(spans, logs, BASE, INC)["behaviour"].sum() == 0.0
    assert behaviour_evidence(spans.iloc[:0], logs, BASE, INC).empty


def test_a_parent_cycle_ends_and_leaves_the_cycle_without_an_execution() -> None:
    spans = pd.DataFrame([
        {"trace_id": "t", "span_id": "x", "parent_id": "y", "service": "s", "operation": "o"},
        {"trace_id": "t", "span_id": "y", "parent_id": "x", "service": "s", "operation": "o"},
        {"trace_id": "t", "span_id": "r", "parent_id": None, "service": "s", "operation": "o"},
        {"trace_id": "t", "span_id": "c", "parent_id": "r", "service": "s", "operation": "p"}])
    ex = executions(spans).reset_index().set_index("span_id")
    assert ex.loc["c", "execution"] == ex.loc["r", "span_key"] and ex.loc["r", "entry"]
    assert ex.loc[["x", "y"], "execution"].isna().all()


def test_executions_read_span_ids_within_their_trace() -> None:
    """An exporter that numbers spans within each trace: span 2 of trace u is not span 2 of
    trace v, and a log line's span id means the span of its own trace."""
    spans, logs = [], []
    for t in _times(BASE, 30) + _times(INC, 15):
        tid = f"u{next(_ids)}"
        slow = t >= INC[0]
        spans += [
            {"trace_id": tid, "span_id": "1", "parent_id": None, "service": "front",
             "operation": "GET /", "start": t, "duration_ms": 40.0, "status": None},
            {"trace_id": tid, "span_id": "2", "parent_id": "1", "service": "svc-a",
             "operation": "/pay", "start": t, "duration_ms": 30.0, "status": None}]
        logs += [{"time": t + pd.Timedelta("9s"), "service": "svc-a", "level": level,
                  "message": msg, "host": "h", "trace_id": tid, "span_id": "2",
                  "status": None} for level, msg in (OK if not slow else OK[:1])]
    spans_df = pd.DataFrame(spans)
    ids, texts = mine_templates([x["message"] for x in logs])
    logs_df = pd.DataFrame(logs).assign(template_id=ids, template=[texts[i] for i in ids])
    ex = executions(spans_df)
    assert len(ex) == len(spans_df)  # no span lost to another trace's span of the same id
    assert ex["entry"].all()  # every span opens an execution of its own service
    a = _row(behaviour_evidence(spans_df, logs_df, BASE, INC), "svc-a")
    assert a["behaviour"] > 0.8 and a["emission"].startswith("log: price quote")
