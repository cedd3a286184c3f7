"""Links to Grafana, Prometheus and Kibana: what the tool decodes is exactly the query and window,
whatever characters the untrusted parts hold."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
import pytest

from incident_lib.core.integrations import validate_links
from incident_lib.report.links import (
    evidence_links,
    grafana_explore_url,
    kibana_discover_url,
    kql_phrase,
    md_link,
    prometheus_graph_url,
    rison,
    served_run_url,
)

# A label value from an alert can hold anything: quotes, &, #, spaces, Rison/URL syntax.
NASTY = 'a"b\'c&d=e#f g%h+i/j?k(l)m!n,o:p'
PROMQL = f'sum(rate(http_requests_total{{service="{NASTY}"}}[1m]))'
START, END = pd.Timestamp("2026-11-20T08:47:00Z"), pd.Timestamp("2026-11-20T12:02:00Z")


def test_grafana_explore_decodes_to_the_query_and_window() -> None:
    url = grafana_explore_url("https://g.example.com/grafana", "prom-uid", PROMQL, START, END)
    parts = urlsplit(url)
    assert (parts.netloc, parts.path, parts.fragment) == ("g.example.com", "/grafana/explore", "")
    q = parse_qs(parts.query)
    assert q["schemaVersion"] == ["1"] and q["orgId"] == ["1"]
    pane = json.loads(q["panes"][0])["a"]
    assert pane["queries"][0]["expr"] == PROMQL
    assert pane["queries"][0]["datasource"] == {"type": "prometheus", "uid": "prom-uid"}
    assert pane["range"] == {"from": "1795164420000", "to": "1795176120000"}  # epoch ms
    assert pd.Timestamp(int(pane["range"]["from"]), unit="ms", tz="UTC") == START


def test_prometheus_graph_decodes_to_the_query_and_window() -> None:
    url = prometheus_graph_url("http://prom:9090", PROMQL, START, END, 15)
    q = parse_qs(urlsplit(url).query)
    assert q["g0.expr"] == [PROMQL]
    assert q["g0.range_input"] == ["11700s"] and q["g0.end_input"] == ["2026-11-20 12:02:00"]
    assert q["g0.step_input"] == ["15"] and q["g0.tab"] == ["0"]


def _unrison_string(text: str) -> str:
    """Decode one quoted Rison string (the spec: !! is !, !' is ')."""
    assert text.startswith("'") and text.endswith("'")
    return re.sub(r"!(.)", r"\1", text[1:-1])


def test_kibana_discover_decodes_to_the_kql_phrase_and_window() -> None:
    kql = kql_phrase("service.name", NASTY)
    assert kql == 'service.name : "a\\"b\'c&d=e#f g%h+i/j?k(l)m!n,o:p"'
    url = kibana_discover_url("https://k.example.com", "logs-dv", kql, START, END)
    base, _, frag = url.partition("#")
    assert base == "https://k.example.com/app/discover"
    assert re.fullmatch(r"/\?_g=[A-Za-z0-9%._~-]+&_a=[A-Za-z0-9%._~-]+", frag)  # all encoded
    g, a = (unquote(p.split("=", 1)[1]) for p in frag[2:].split("&"))
    assert g == "(time:(from:'2026-11-20T08:47:00.000Z',to:'2026-11-20T12:02:00.000Z'))"
    m = re.fullmatch(r"\(index:logs-dv,query:\(language:kuery,query:('.*')\)\)", a)
    assert m and _unrison_string(m.group(1)) == kql


@pytest.mark.parametrize(("value", "encoded"), [
    ("abc", "abc"), ("a b", "'a b'"), ("don't!", "'don!'t!!'"), ("", "''"), ("-1", "'-1'"),
    (True, "!t"), (None, "!n"), (3, "3"), ([1, "x y"], "!(1,'x y')"),
    ({"a": {"b": "c"}}, "(a:(b:c))"),
])
def test_rison_follows_the_spec_examples(value: object, encoded: str) -> None:
    assert rison(value) == encoded


def test_run_link_and_markdown_link_keep_text_inert() -> None:
    assert served_run_url("https://i.example.com", "checkout-1") == \
        "https://i.example.com/runs/checkout-1/"
    link = md_link("[x](javascript:alert(1))", "https://i.example.com/a b")
    assert link == "[x(javascript:alert(1))](https://i.example.com/a%20b)"


def test_evidence_links_use_the_promql_sent_or_declared() -> None:
    cfg = validate_links({"grafana": {"url": "https://g", "datasource": "p"},
                          "prometheus": {"url": "https://p"},
                          "kibana": {"url": "https://k", "data_view": "dv"}})
    index = {"signal_error_rate": {"backend": "prometheus", "query": f"{PROMQL} step=15s",
                                   "notes": {"step": 15}},
             "signal_traffic": {"backend": "files", "query": "files:metrics.om {...}"},
             "signal_cpu": {"backend": "files", "query": "files:metrics.om {...}"},
             "logs": {"backend": "files", "query": "files:logs.ndjson"},
             "anomalies": {"backend": "analysis", "query": "robust z"}}
    links = evidence_links(cfg, index, START, END, {"traffic": "sum(rate(x[1m]))"})
    got = {(x["evidence"], x["tool"]) for x in links}
    assert got == {("signal_error_rate", "Grafana"), ("signal_error_rate", "Prometheus"),
                   ("signal_traffic", "Grafana"), ("signal_traffic", "Prometheus"),
                   ("logs", "Kibana")}  # cpu: no PromQL declared, so no link (never invented)
    prom = next(x["url"] for x in links if x["evidence"] == "signal_error_rate"
                and x["tool"] == "Prometheus")
    assert parse_qs(urlsplit(prom).query)["g0.expr"] == [PROMQL]  # step suffix removed
