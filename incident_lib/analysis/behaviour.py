"""Per-operation behaviour: did a service start doing something else when it serves a request?

A service's *execution* is one entry span of it in a trace (a root span, or a span whose parent
belongs to another service) with everything it does until it answers: its internal spans, the
calls it makes to other services (their entry spans) and the log lines it writes meanwhile
(attached by `span_id` when logs carry one, else by trace, service and time). Executions are
grouped by their *context*, the service and operation of the entry span. For every context and
every emission (a log template, an internal span operation, a call to another service's
operation) the share of executions that show it is compared between the normal period and the
incident: a template that every call used to write and none writes now, a new error line in
every call, a callee no longer reached.

Conditioning on the operation makes the comparison immune to a change of request mix, which
moves whole-service template rates between any two periods (what the unconditioned log kinds
of analysis.evidence suffer from). Faults injected in code (an exception, a wrong return value)
change what *every* execution of the faulty operation does, while data-dependent branches move
by a fraction: the statistic is therefore an effect size, the change in share, taken at its
lower confidence bound (two standard errors) so that a context with few executions cannot win
on a lucky ratio, and only where the binomial test is significant (-log10 p >= 3).

This is the expected-versus-actual event pattern comparison of Nezha (Yu et al., FSE 2023),
which mines event pairs within traces from a fault-free period, reduced to the pairs
(operation, emission) of one execution; DeepTraLog (Zhang et al., ICSE 2022) likewise models a
span together with the log events written inside it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..core.model import span_key
from .evidence import is_error_line, share_change, share_var

__all__ = ["BEHAVIOUR_COLUMNS", "behaviour_evidence", "behaviour_text", "collapse_repeats",
           "executions", "parameter_siblings"]

BEHAVIOUR_COLUMNS = ["service", "behaviour", "behaviour_sig", "context", "emission",
                     "base_share", "incident_share", "base_executions", "incident_executions"]
MIN_EXECUTIONS = 3  # a context needs this many executions on each side to be compared
SIG_GATE = 3.0  # -log10 p of the binomial test
FAILED = "failed"  # the emission of an execution that wrote an error line or an error span
SEP = "\x1f"  # between service and operation in a context key (in neither)
_LIST = re.compile(r"\[(?:[^\s\[\],]+,\s*)+[^\s\[\],]+\]")
MAX_PERIOD = 8  # longest token run collapse_repeats looks for
HEAD_TOKENS = 40  # first tokens of a template that name its event


def behaviour_text(b: Any) -> str:
    """One changed operation in words, from a row of behaviour_evidence (a dict or a Series)."""
    return (f"in {b['context']}: {b['emission']} in {b['incident_share']:.0%} of "
            f"{b['incident_executions']} executions (normal {b['base_share']:.0%} of "
            f"{b['base_executions']})")


def executions(spans: pd.DataFrame) -> pd.DataFrame:
    """Spans indexed by their trace-scoped key (core.model.span_key) with `parent_key`,
    `entry` (opens an execution) and `execution` (the key of the entry span it belongs to: its
    nearest ancestor-or-self entry span of the same service)."""
    key = span_key(spans["trace_id"], spans["span_id"])
    sp = spans.assign(parent_key=span_key(spans["trace_id"], spans["parent_id"]).to_numpy())
    sp = sp.set_axis(pd.Index(key.to_numpy(), name="span_key"))
    sp = sp[~sp.index.duplicated()]
    parent = sp["parent_key"].where(sp["parent_key"].notna(), None)
    svc = sp["service"].astype(str)
    psvc = parent.map(svc)
    entry = (parent.isna() | psvc.isna() | (psvc != svc)).astype(bool)
    execution = pd.Series(np.where(entry, sp.index, None), index=sp.index, dtype=object)
    cur = parent.where(~entry)
    for _ in range(len(sp)):  # one step up per round; cycles are cut by the round limit
        todo = execution.isna() & cur.notna()
        if not todo.any():
            break
        idx = todo[todo].index
        up = cur[idx]
        is_entry = up.map(entry).fillna(True).astype(bool).to_numpy()
        execution.loc[idx[is_entry]] = up[is_entry].to_numpy()
        cur.loc[idx] = up.map(parent).where(~is_entry).to_numpy()
    return sp.assign(entry=entry, execution=execution)


def parameter_siblings(templates: dict[str, str]) -> dict[str, str]:
    """template id -> one id per group of templates that are one event written with other
    parameters:
    - a payload dump: only the first HEAD_TOKENS tokens name the event, since long lines
      are cut at varying points by shippers and runtimes;
    - a list of variable length: consecutive repeats of the same token run (up to
      MAX_PERIOD tokens) in that head count once, so "[T(a), T(a), T(a)]" and "[T(a), T(a)]"
      are one;
    - a list of single-word values ("regions: [eu-west, us-east, ap-south]"): the miner
      keeps values that vary little as constants, so a request with other values would read
      as another event; such a bracketed list counts as one parameter (a bracket whose items
      hold spaces, such as an exception's text, is kept);
    - a value the miner kept as a constant because it varied too little (a product type, a
      region name): templates that then differ in exactly one token (same length, at least 3
      tokens), which a change of request parameters swaps.
    Drain (He et al., ICWS 2017) merges such templates by its similarity threshold and routes
    a line by its first tokens; variable-length parameter lists are the case it leaves split
    (Zhu et al., "Tools and Benchmarks for Automated Log Parsing", ICSE-SEIP 2019)."""
    parent = {t: t for t in templates}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    def union(a: str, b: str) -> None:
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)

    same: dict[tuple[str, ...], str] = {}
    seen: dict[tuple[int, int, tuple[str, ...]], str] = {}
    for tid in sorted(templates):
        toks = tuple(collapse_repeats(templates[tid].split()[:HEAD_TOKENS]))
        union(same.setdefault(toks, tid), tid)
        listed = tuple(_LIST.sub("[<list>]", " ".join(toks)).split())
        union(same.setdefault(listed, tid), tid)
        if len(toks) < 3:
            continue
        for i in range(len(toks)):
            union(seen.setdefault((len(toks), i, toks[:i] + toks[i + 1:]), tid), tid)
    return {t: find(t) for t in templates}


def collapse_repeats(tokens: list[str]) -> list[str]:
    """`tokens` with every run of consecutive repeats of a token sequence (period 1 ..
    MAX_PERIOD) kept once: the shape of a variable-length list, whatever its length."""
    out = list(tokens)
    for p in range(1, MAX_PERIOD + 1):
        i, kept = 0, []
        while i < len(out):
            run = out[i:i + p]
            j = i + p
            while j + p <= len(out) and out[j:j + p] == run:
                j += p
            if j > i + p:  # run repeated: keep it once
                kept.extend(run)
                i = j
            else:
                kept.append(out[i])
                i += 1
        out = kept
    return out


def _emissions(spans: pd.DataFrame, logs: pd.DataFrame | None,
               siblings: dict[str, str] | None = None
               ) -> tuple[pd.DataFrame, pd.Series, dict[str, str]]:
    """(distinct (execution, context, emission) rows, executions per context, labels)."""
    sp = executions(spans)
    entries = sp[sp["entry"]]
    context = entries["service"].astype(str) + SEP + entries["operation"].astype(str)
    labels: dict[str, str] = {}
    inner = sp[~sp["entry"] & sp["execution"].notna()]
    parts = [pd.DataFrame({"execution": inner["execution"].to_numpy(),
                           "emission": "span " + inner["operation"].astype(str).to_numpy()})]
    called = entries[entries["parent_key"].notna()]
    parts.append(pd.DataFrame({"execution": called["parent_key"].map(sp["execution"]).to_numpy(),
                               "emission": "call " + context[called.index].to_numpy()}))
    if logs is not None and len(logs) and "template_id" in logs:
        lg = logs.reset_index(drop=True)
        ex = (span_key(lg["trace_id"], lg["span_id"]).map(sp["execution"]) if "span_id" in lg
              else pd.Series(None, index=lg.index, dtype=object))
        miss = ex.isna() & lg["trace_id"].notna()
        if miss.any():  # no span id: the service's execution in that trace holding the time
            cand = entries.reset_index()[["span_key", "trace_id", "service", "start",
                                          "duration_ms"]]
            m = lg[miss].reset_index().merge(cand, on=["trace_id", "service"], how="inner")
            end = m["start"] + pd.to_timedelta(m["duration_ms"].fillna(0.0) + 50.0, unit="ms")
            m = m[(m["time"] >= m["start"] - pd.Timedelta("50ms")) & (m["time"] <= end)]
            m = m.sort_values("start").drop_duplicates("index", keep="last")
            ex.loc[m["index"].to_numpy()] = m["span_key"].to_numpy()
        tid = lg["template_id"].astype(str)
        key = "log " + (tid.map(siblings).fillna(tid) if siblings else tid)
        if "template" in lg:
            labels.update(dict(zip(key, "log: " + lg["template"].astype(str), strict=False)))
        parts.append(pd.DataFrame({"execution": ex.to_numpy(), "emission": key.to_numpy()}))
        err = lg[is_error_line(lg["level"], lg["message"])] if "level" in lg else lg.iloc[:0]
        parts.append(pd.DataFrame({"execution": ex[err.index].to_numpy(), "emission": FAILED}))
    if "status" in sp:
        bad = sp[sp["status"].astype("string").str.lower().eq("error").fillna(False)]
        parts.append(pd.DataFrame({"execution": bad["execution"].to_numpy(),
                                   "emission": FAILED}))
    em = pd.concat(parts, ignore_index=True).dropna().drop_duplicates()
    em["context"] = em["execution"].map(context)
    em = em.dropna()
    return em, context.value_counts(), labels


def behaviour_evidence(
    spans: pd.DataFrame,
    logs: pd.DataFrame | None,
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    *,
    history_spans: pd.DataFrame | None = None,
    history_logs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per service: `behaviour`, the largest lower-bounded change in the share of one
    context's executions that show one emission (0 .. 1; 0 where no change is significant),
    its -log10 p, and which context and emission it was. `logs` need `template_id`.

    Executions are placed by their entry span's start: baseline rows are those in `baseline`
    plus the history rows (a declared fault-free period), incident rows those in `incident`."""
    if spans is None or spans.empty:
        return pd.DataFrame(columns=BEHAVIOUR_COLUMNS)

    def cut(df: pd.DataFrame | None, col: str, win: tuple[pd.Timestamp, pd.Timestamp],
            extra: pd.DataFrame | None = None) -> pd.DataFrame | None:
        if df is None:
            return extra
        part = df[(df[col] >= win[0]) & (df[col] < win[1])] if win[1] > win[0] else df.iloc[:0]
        return part if extra is None else pd.concat([part, extra], ignore_index=True)

    s0 = cut(spans, "start", baseline, history_spans)
    s1 = cut(spans, "start", (incident[0], incident[1] + pd.Timedelta("1ns")))
    l0 = cut(logs, "time", baseline, history_logs)
    l1 = cut(logs, "time", (incident[0], incident[1] + pd.Timedelta("1ns")))
    if s0 is None or s1 is None or s0.empty or s1.empty:
        return pd.DataFrame(columns=BEHAVIOUR_COLUMNS)
    texts: dict[str, str] = {}
    for lg in (l0, l1):
        if lg is not None and "template" in lg:
            texts.update(zip(lg["template_id"].astype(str), lg["template"].astype(str),
                             strict=False))
    siblings = parameter_siblings(texts)
    e0, n0, labels0 = _emissions(s0, l0, siblings)
    e1, n1, labels1 = _emissions(s1, l1, siblings)
    # The failure share counts when it rises only. A context whose failure share fell is
    # recovering (a normal period that was itself failing): its other changes are the
    # recovery's, not the incident's, and the context is left out.
    k0 = e0.groupby(["context", "emission"]).size().rename("k0")
    k1 = e1.groupby(["context", "emission"]).size().rename("k1")
    df = pd.concat([k0, k1], axis=1).fillna(0.0).reset_index()
    df["n0"] = df["context"].map(n0).fillna(0.0)
    df["n1"] = df["context"].map(n1).fillna(0.0)
    df["rise_only"] = df["emission"] == FAILED
    f = df[df["rise_only"]]
    _, fell = share_change(f["k1"], f["n1"], f["k0"], f["n0"])
    recovering = set(f.loc[fell >= SIG_GATE, "context"])
    df = df[~df["context"].isin(recovering)]
    df = df[(df["n0"] >= MIN_EXECUTIONS) & (df["n1"] >= MIN_EXECUTIONS)]
    if df.empty:
        return pd.DataFrame(columns=BEHAVIOUR_COLUMNS)
    up, down = share_change(df["k1"], df["n1"], df["k0"], df["n0"])
    sig = np.maximum(up, np.where(df["rise_only"], 0.0, down))
    a0, a1 = df["k0"] / df["n0"], df["k1"] / df["n1"]
    a1 = a1.where(~df["rise_only"] | (a1 >= a0), a0)
    se = np.sqrt(share_var(a0, df["n0"]) + share_var(a1, df["n1"]))
    effect = ((a1 - a0).abs() - 2.0 * se).clip(lower=0.0)
    df = df.assign(sig=sig, effect=effect.where(sig >= SIG_GATE, 0.0),
                   service=[c.split(SEP, 1)[0] for c in df["context"]], a0=a0, a1=a1)
    df = df.sort_values(["effect", "sig"], ascending=False)
    best = df.drop_duplicates("service")
    labels = {**labels0, **labels1, FAILED: "executions that wrote an error (log or span)"}
    out = pd.DataFrame({
        "service": best["service"].to_numpy(), "behaviour": best["effect"].to_numpy(),
        "behaviour_sig": best["sig"].to_numpy(),
        "context": [c.split(SEP, 1)[1] for c in best["context"]],
        "emission": [labels.get(e, e).replace(SEP, " ") for e in best["emission"]],
        "base_share": best["a0"].round(3).to_numpy(),
        "incident_share": best["a1"].round(3).to_numpy(),
        "base_executions": best["n0"].astype(int).to_numpy(),
        "incident_executions": best["n1"].astype(int).to_numpy()})
    return out.reset_index(drop=True)
