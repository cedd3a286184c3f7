"""Alertmanager webhook (v4) payloads and CLI flags -> Incident; the dedupe key."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.config import resolve_sources
from ..core.errors import InputError
from ..core.model import Incident, iso, parse_time
from ..core.storage import slug, validate_incident_id
from ..sources import make_metric_source

__all__ = ["load_alert_file", "validate_payload", "incident_from_alert", "incident_from_cli",
           "dedupe_key", "check_service"]

LOOKBACK = pd.Timedelta("2h")
LOOKAHEAD = pd.Timedelta("75min")
MAX_LABEL = 1000


def load_alert_file(path: str | Path) -> dict[str, Any]:
    """Read and validate an alert JSON file (Alertmanager webhook v4)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"alert file {p} does not exist: pass --alert with a webhook JSON file")
    try:
        payload = json.loads(p.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"alert file {p} is not valid JSON (line {exc.lineno}, column "
                         f"{exc.colno}): fix the file") from None
    except UnicodeDecodeError:
        raise InputError(f"alert file {p} is not UTF-8 text: pass a webhook JSON file") from None
    return validate_payload(payload, str(p))


def _str_map(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InputError(f"{field} must be an object of string labels")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InputError(f"{field} must map strings to strings")
        if "\x00" in k or "\x00" in v:
            raise InputError(f"{field}.{k[:30]!r} contains a NUL character: remove it")
        out[k[:MAX_LABEL]] = v[:MAX_LABEL]
    return out


def validate_payload(payload: Any, where: str = "payload") -> dict[str, Any]:
    """Check the fields we use; raise InputError naming the first bad one."""
    if not isinstance(payload, dict):
        raise InputError(f"{where}: expected a JSON object (Alertmanager webhook v4)")
    if str(payload.get("version", "")) != "4":
        raise InputError(f"{where}: field 'version' must be \"4\" (Alertmanager webhook v4)")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise InputError(f"{where}: field 'alerts' must be a non-empty list")
    for i, a in enumerate(alerts):
        if not isinstance(a, dict):
            raise InputError(f"{where}: alerts[{i}] must be an object")
        a["labels"] = _str_map(a.get("labels", {}), f"{where}: alerts[{i}].labels")
        a["annotations"] = _str_map(a.get("annotations", {}), f"{where}: alerts[{i}].annotations")
        if a.get("status") not in ("firing", "resolved"):
            raise InputError(f"{where}: alerts[{i}].status must be firing or resolved")
        parse_time(a.get("startsAt", ""), f"{where}: alerts[{i}].startsAt")
    if payload.get("status") not in ("firing", "resolved"):
        raise InputError(f"{where}: field 'status' must be firing or resolved")
    if not isinstance(payload.get("groupKey"), str):
        raise InputError(f"{where}: field 'groupKey' must be a string")
    for key in ("commonLabels", "commonAnnotations", "groupLabels"):
        payload[key] = _str_map(payload.get(key, {}), f"{where}: {key}")
    return payload


def dedupe_key(payload: dict[str, Any]) -> str:
    """One alert group (receiver + groupKey) is one incident."""
    raw = f"{payload.get('receiver', '')}\x00{payload['groupKey']}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]


def check_service(service: str, known: list[str]) -> str:
    """service if the telemetry knows it, else InputError listing known services."""
    if known and service not in known:
        raise InputError(f"service {service[:60]!r} is unknown to the metrics backend: use one "
                         f"of {', '.join(known[:20])}")
    return service


def _known_services(sources: dict[str, Any]) -> list[str]:
    try:
        return make_metric_source(sources["metrics"]).services()
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - an unreachable backend must not block opening an incident
        return []


def incident_from_alert(payload: dict[str, Any], config: dict[str, Any],
                        incident_id: str | None = None, *, start: str | None = None,
                        end: str | None = None) -> Incident:
    """An Incident for an alert group: window around the earliest startsAt.

    start/end (ISO-8601, end may be "now") place the window; without them it runs from 2 h
    before the alert to 75 minutes after it, capped at now (the webhook default).
    """
    payload = validate_payload(payload)
    alerts = payload["alerts"]
    labels = {**alerts[0]["labels"], **payload["commonLabels"]}
    ann = {**alerts[0]["annotations"], **payload["commonAnnotations"]}
    service = labels.get("service") or labels.get("job") or labels.get("app")
    if not service:
        raise InputError("alert has no 'service' (or job/app) label: add one to the alerting "
                         "rule so the investigation knows where to look")
    sources, topo = resolve_sources(config)
    check_service(service, _known_services(sources))
    starts = min(parse_time(a["startsAt"], "startsAt") for a in alerts)
    now = pd.Timestamp(datetime.now(UTC))
    t0 = parse_time(start, "--start") if start else starts - LOOKBACK
    if end == "now":
        t1 = now
    elif end:
        t1 = parse_time(end, "--end")
    else:
        t1 = min(starts + LOOKAHEAD, max(now, starts + pd.Timedelta("1min")))
    if t1 <= t0:
        raise InputError(f"--end {iso(t1)} is not after the window start {iso(t0)}: pass a "
                         "later --end (or now)")
    if t1 - t0 > pd.Timedelta("7D"):
        raise InputError("the window is longer than 7 days: pass --start/--end to narrow it")
    key = dedupe_key(payload)
    if incident_id is None:
        name = slug(labels.get("alertname", "alert"), 30)
        incident_id = f"{name}-{slug(service, 30)}-{starts:%Y%m%dt%H%M}-{key[:6]}"
    validate_incident_id(incident_id)
    title = ann.get("summary") or f"{labels.get('alertname', 'alert')} on {service}"
    resolved = None
    if payload["status"] == "resolved":
        ends = [a.get("endsAt") for a in alerts if a.get("endsAt")]
        resolved = iso(max(parse_time(e, "endsAt") for e in ends)) if ends else iso(now)
    return Incident(id=incident_id, title=title[:200], service=service, start=iso(t0) or "",
                    end=iso(t1) or "", alert_time=iso(starts), labels=labels,
                    annotations=ann, source="alertmanager", group_key=key, resolved_at=resolved,
                    sources=sources, topology=topo,
                    severity_policy=config.get("severity_policy"))


def incident_from_cli(service: str, start: str, end: str, config: dict[str, Any],
                      incident_id: str | None = None, title: str | None = None) -> Incident:
    """An Incident opened by hand for a service and time window."""
    t0, t1 = parse_time(start, "--start"), parse_time(end, "--end")
    if t1 <= t0:
        raise InputError(f"--end {iso(t1)} is not after --start {iso(t0)}: swap or fix them")
    if t1 - t0 > pd.Timedelta("7D"):
        raise InputError("--start to --end is longer than 7 days: narrow the window")
    sources, topo = resolve_sources(config)
    check_service(service, _known_services(sources))
    if incident_id is None:
        incident_id = f"{slug(service, 40)}-{t0:%Y%m%dt%H%M}"
    validate_incident_id(incident_id)
    return Incident(id=incident_id, title=title or f"Investigation of {service}",
                    service=service, start=iso(t0) or "", end=iso(t1) or "", source="cli",
                    sources=sources, topology=topo,
                    severity_policy=config.get("severity_policy"))
