"""Links back to the team's tools for each evidence query: Grafana Explore, the Prometheus graph
page, Kibana Discover, and the run served by `incident serve`.

Every piece of a URL that comes from data (PromQL holding label values from an alert, service
names, incident ids) is percent-encoded as a whole query value or path segment; the base URLs
are the team's own (validated in core/integrations.py). Kibana's `_g`/`_a` state is Rison
(a ~20-line encoder below: the PyPI Rison packages are unmaintained or add a dependency for
what is a few documented escaping rules: `!` -> `!!`, `'` -> `!'` inside '...').
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd

from ..core.safe import md_inline

__all__ = ["grafana_explore_url", "prometheus_graph_url", "kibana_discover_url", "kql_phrase",
           "rison", "served_run_url", "evidence_links", "md_link", "promql_of"]

_RISON_ID = re.compile(r"[^-0-9 '!:(),*@$][^ '!:(),*@$]*")
_STEP_SUFFIX = re.compile(r" step=[0-9.e+-]+s$")


def _ms(ts: Any) -> int:
    return int(pd.Timestamp(ts).tz_convert("UTC").timestamp() * 1000)


def _iso(ts: Any) -> str:
    t = pd.Timestamp(ts).tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def grafana_explore_url(base: str, datasource: str, promql: str, start: Any, end: Any,
                        org_id: int = 1) -> str:
    """Grafana (10+) Explore with one Prometheus query over [start, end] (`panes` URL state)."""
    ds = {"type": "prometheus", "uid": datasource}
    panes = {"a": {"datasource": datasource,
                   "queries": [{"refId": "A", "expr": promql, "range": True, "instant": False,
                                "datasource": ds, "editorMode": "code"}],
                   "range": {"from": str(_ms(start)), "to": str(_ms(end))}}}
    query = urlencode({"schemaVersion": 1, "panes": json.dumps(panes, separators=(",", ":")),
                       "orgId": org_id}, quote_via=quote)
    return f"{base}/explore?{query}"


def prometheus_graph_url(base: str, promql: str, start: Any, end: Any,
                         step: float | None = None) -> str:
    """Prometheus' graph page (2.x and 3.x accept the g0.* parameters) over [start, end]."""
    seconds = max(1, int((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()))
    params = {"g0.expr": promql, "g0.tab": "0", "g0.range_input": f"{seconds}s",
              "g0.end_input": pd.Timestamp(end).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")}
    if step:
        params["g0.step_input"] = f"{step:g}"
    return f"{base}/graph?{urlencode(params, quote_via=quote)}"


def rison(value: Any) -> str:
    """Rison encoding of dicts, lists, strings, numbers, booleans and None."""
    if value is None:
        return "!n"
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if _RISON_ID.fullmatch(value):
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, dict):
        return "(" + ",".join(f"{rison(str(k))}:{rison(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} as Rison")


def kql_phrase(field: str, value: str) -> str:
    """A KQL phrase query `field : "value"` with `\\` and `"` escaped (never parsed as KQL)."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'{field} : "{escaped}"'


def kibana_discover_url(base: str, data_view: str, kql: str, start: Any, end: Any) -> str:
    """Kibana Discover on a data view with a KQL query over [start, end]."""
    g = rison({"time": {"from": _iso(start), "to": _iso(end)}})
    a = rison({"index": data_view, "query": {"language": "kuery", "query": kql}})
    return f"{base}/app/discover#/?_g={quote(g, safe='')}&_a={quote(a, safe='')}"


def served_run_url(base: str, incident_id: str) -> str:
    """The run's page on `incident serve` (the id is one encoded path segment)."""
    return f"{base}/runs/{quote(incident_id, safe='')}/"


def md_link(text: str, url: str) -> str:
    """A Markdown link whose text is inert: brackets, backticks and angle brackets are dropped
    from it (md_inline leaves `]` alone, which would close the link text early), the rest
    escaped; the URL must already be percent-encoded (spaces and parentheses are encoded)."""
    if re.search(r"[\s<>()\\]", url):
        url = quote(url, safe=":/?#[]@!$&'*+,;=%")
    return f"[{md_inline(re.sub(r'[][`<>]', '', text), 120)}]({url})"


def promql_of(meta: dict[str, Any], declared: dict[str, str]) -> str | None:
    """The PromQL behind an evidence entry: the query sent to Prometheus, else the signal's
    declared PromQL (files backend), else None."""
    name = str(meta.get("name", ""))
    if not name.startswith("signal_"):
        return None
    if meta.get("backend") == "prometheus":
        query = str(meta.get("query", ""))
        return _STEP_SUFFIX.sub("", query) if "no promql declared" not in query else None
    return declared.get(name[len("signal_"):])


def evidence_links(config: dict[str, Any] | None, index: dict[str, dict[str, Any]],
                   start: Any, end: Any, declared: dict[str, str] | None = None,
                   service: str | None = None) -> list[dict[str, str]]:
    """Links per evidence query to the configured tools: [{evidence, tool, url}, ...].

    Signals open in Grafana Explore and the Prometheus graph page (with their PromQL and the
    incident window); log evidence opens Kibana Discover on the window (filtered to `service`
    when given, as a KQL phrase).
    """
    cfg = config or {}
    out: list[dict[str, str]] = []
    for name, meta in index.items():
        meta = {**meta, "name": name}
        promql = promql_of(meta, declared or {})
        if promql:
            step = (meta.get("notes") or {}).get("step")
            if cfg.get("grafana"):
                g = cfg["grafana"]
                out.append({"evidence": name, "tool": "Grafana", "url": grafana_explore_url(
                    g["url"], g["datasource"], promql, start, end, g.get("org_id", 1))})
            if cfg.get("prometheus"):
                out.append({"evidence": name, "tool": "Prometheus", "url": prometheus_graph_url(
                    cfg["prometheus"]["url"], promql, start, end, step)})
        elif name in ("logs", "log_volume") and cfg.get("kibana"):
            k = cfg["kibana"]
            kql = kql_phrase(k.get("service_field", "service.name"), service) if service else ""
            out.append({"evidence": name, "tool": "Kibana", "url": kibana_discover_url(
                k["url"], k["data_view"], kql, start, end)})
    return out
