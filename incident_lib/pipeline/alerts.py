"""Alertmanager webhook (v4) payloads and CLI flags -> Incident; the dedupe key."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.config import resolve_sources
from ..core.errors import InputError
from ..core.model import Incident, iso, parse_time
from ..core.storage import slug, validate_incident_id
from ..sources import make_metric_source, make_span_source

__all__ = ["load_alert_file", "validate_payload", "incident_from_alert", "incident_from_cli",
           "dedupe_key", "check_service", "known_services", "services_where", "alert_time",
           "resolved_time", "cli_time", "MIN_WINDOW"]

LOOKBACK = pd.Timedelta("2h")
LOOKAHEAD = pd.Timedelta("75min")
MAX_LABEL = 1000
# Times outside [EARLIEST, now + CLOCK_SKEW] cannot be a real alert: Alertmanager's Go zero
# time (0001-01-01) means "not set", 9999 or a future startsAt is a broken clock or a test.
EARLIEST = pd.Timestamp("1990-01-01", tz="UTC")
CLOCK_SKEW = pd.Timedelta("5min")
# Onset and baseline need several scrape intervals: a shorter window cannot show a change.
MIN_WINDOW = pd.Timedelta("5min")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_ZONE = re.compile(r"([Zz]|[+-]\d{2}:?\d{2}|UTC|GMT)\s*$")


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


def _now() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(UTC))


def _plausible(ts: pd.Timestamp, field: str, now: pd.Timestamp) -> pd.Timestamp:
    if ts < EARLIEST:
        raise InputError(f"{field} {iso(ts) if ts.year > 999 else ts.isoformat()} is before "
                         f"{EARLIEST:%Y-%m-%d}: not a real time (a zero or unset clock?)")
    if ts > now + CLOCK_SKEW:
        raise InputError(f"{field} {ts.isoformat()} is in the future (now is {iso(now)}): "
                         "fix the sender's clock")
    return ts.as_unit("ns")


def alert_time(value: Any, field: str, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """An RFC 3339 string from an alert, within [1990, now + 5 min], else InputError."""
    if not isinstance(value, str):
        raise InputError(f"{field} must be an RFC 3339 time string like 2026-11-20T10:42:00Z, "
                         f"not a JSON {type(value).__name__}")
    if not _RFC3339.fullmatch(value):
        raise InputError(f"{field} {value[:40]!r} is not an RFC 3339 time like "
                         "2026-11-20T10:42:00Z")
    return _plausible(parse_time(value, field), field, now or _now())


def _is_zero_time(value: Any) -> bool:
    """Alertmanager's "not set" endsAt: missing, empty, or Go's zero time (year 1)."""
    return value in (None, "") or (isinstance(value, str) and value.startswith("0001-01-01"))


def resolved_time(payload: dict[str, Any], now: pd.Timestamp | None = None) -> str | None:
    """Resolve time of a `resolved` notification: latest endsAt, else the receipt time."""
    if payload.get("status") != "resolved":
        return None
    now = now or _now()
    ends = [alert_time(a["endsAt"], f"alerts[{i}].endsAt", now)
            for i, a in enumerate(payload["alerts"])
            if a.get("status") == "resolved" and not _is_zero_time(a.get("endsAt"))]
    return iso(max(ends)) if ends else iso(now)


def cli_time(value: str, flag: str, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """A time given on the command line: ISO-8601 with a zone, within [1990, now + 1 day]."""
    text = value.strip()
    if not text or text[0] in "+-" or text.lstrip("+-").replace(".", "").isdigit():
        raise InputError(f"{flag} {value[:40]!r} is not a time: use ISO-8601 with a zone like "
                         "2026-11-20T10:42:00Z")
    now = now or _now()
    if text.lower() == "now":
        return now.as_unit("ns")
    ts = parse_time(text, flag)
    if not _ZONE.search(text):
        raise InputError(f"{flag} {value[:40]!r} has no time zone: add Z (UTC) or an offset "
                         "like +01:00")
    if ts < EARLIEST or ts > now + pd.Timedelta("1D"):
        raise InputError(f"{flag} {value[:40]!r} is outside {EARLIEST:%Y} .. tomorrow: no "
                         "telemetry can exist there")
    return ts.as_unit("ns")


def validate_payload(payload: Any, where: str = "payload") -> dict[str, Any]:
    """Check the fields we use; raise InputError naming the first bad one."""
    if not isinstance(payload, dict):
        raise InputError(f"{where}: expected a JSON object (Alertmanager webhook v4)")
    if payload.get("version") != "4":
        raise InputError(f"{where}: field 'version' must be \"4\" (a JSON string; "
                         "Alertmanager webhook v4)")
    for key in ("receiver", "externalURL", "truncatedAlerts"):
        want = int if key == "truncatedAlerts" else str
        if key in payload and (not isinstance(payload[key], want)
                               or isinstance(payload[key], bool)):
            raise InputError(f"{where}: field {key!r} must be a JSON {want.__name__}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise InputError(f"{where}: field 'alerts' must be a non-empty list")
    now = _now()
    for i, a in enumerate(alerts):
        if not isinstance(a, dict):
            raise InputError(f"{where}: alerts[{i}] must be an object")
        a["labels"] = _str_map(a.get("labels", {}), f"{where}: alerts[{i}].labels")
        a["annotations"] = _str_map(a.get("annotations", {}), f"{where}: alerts[{i}].annotations")
        if a.get("status") not in ("firing", "resolved"):
            raise InputError(f"{where}: alerts[{i}].status must be firing or resolved")
        for key in ("fingerprint", "generatorURL"):
            if key in a and not isinstance(a[key], str):
                raise InputError(f"{where}: alerts[{i}].{key} must be a JSON string")
        starts = alert_time(a.get("startsAt"), f"{where}: alerts[{i}].startsAt", now)
        ends = a.get("endsAt")
        if not _is_zero_time(ends):  # firing alerts carry a zero or a future expiry endsAt
            end = alert_time(ends, f"{where}: alerts[{i}].endsAt",
                             now + pd.Timedelta("30D") if a["status"] == "firing" else now)
            if a["status"] == "resolved" and end < starts:
                raise InputError(f"{where}: alerts[{i}].endsAt is before its startsAt")
        elif ends is not None and not isinstance(ends, str):
            raise InputError(f"{where}: alerts[{i}].endsAt must be a JSON string")
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


def check_service(service: str, known: list[str], where: str = "the metrics backend") -> str:
    """service if the telemetry knows it, else InputError listing known services (`where`
    names the sources asked: services_where)."""
    if known and service not in known:
        raise InputError(f"service {service[:60]!r} is unknown to {where}: use one "
                         f"of {', '.join(known[:20])}")
    return service


def _has_spans(sources: dict[str, Any]) -> bool:
    return str((sources.get("spans") or {}).get("kind", "none")) != "none"


def services_where(sources: dict[str, Any]) -> str:
    """Which sources known_services asks, for the error text."""
    return "the metrics and the spans" if _has_spans(sources) else "the metrics backend"


def known_services(sources: dict[str, Any]) -> list[str]:
    """Services the metrics backend or the spans know ([] when one of them cannot say: that
    never blocks). A service with spans but no metrics (an export's entry service often
    lacks a per-pod metric file) is known: its missing signals are stated by the triage."""
    try:
        names = set(make_metric_source(sources["metrics"]).services())
        if _has_spans(sources):
            lister = getattr(make_span_source(sources["spans"]), "services", None)
            if lister is None:
                return []
            names |= set(lister())
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - an unreachable backend must not block opening an incident
        return []
    return sorted(names)


def incident_from_alert(payload: dict[str, Any], config: dict[str, Any],
                        incident_id: str | None = None,
                        received: pd.Timestamp | None = None, *, start: str | None = None,
                        end: str | None = None) -> Incident:
    """An Incident for an alert group: window around the earliest startsAt.

    `received` is when the notification arrived (the resolve time when endsAt is unset).
    start/end (ISO-8601, end may be "now") place the window; without them it runs from 2 h
    before the alert to 75 minutes after it, capped at the receipt time (the webhook default).
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
    check_service(service, known_services(sources), services_where(sources))
    now = received if received is not None else _now()
    starts = min(parse_time(a["startsAt"], "startsAt") for a in alerts)
    t0 = parse_time(start, "--start") if start else starts - LOOKBACK
    if end == "now":
        t1 = now
    elif end:
        t1 = parse_time(end, "--end")
    else:  # ends at the receipt time at the latest, and is never shorter than MIN_WINDOW
        t1 = min(starts + LOOKAHEAD, max(now, starts + MIN_WINDOW))
    if t1 - t0 < MIN_WINDOW:
        raise InputError(f"the window {iso(t0)} to {iso(t1)} is shorter than "
                         f"{int(MIN_WINDOW.total_seconds() // 60)} minutes: pass a later --end "
                         "(or now)")
    if t1 - t0 > pd.Timedelta("7D"):
        raise InputError("the window is longer than 7 days: pass --start/--end to narrow it")
    key = dedupe_key(payload)
    if incident_id is None:
        name = slug(labels.get("alertname", "alert"), 30)
        incident_id = f"{name}-{slug(service, 30)}-{starts:%Y%m%dt%H%M}-{key[:6]}"
    validate_incident_id(incident_id)
    title = ann.get("summary") or f"{labels.get('alertname', 'alert')} on {service}"
    resolved = resolved_time(payload, now)
    previous = payload.get("_previous_incident")  # set by `incident serve` on a re-fire
    previous = validate_incident_id(previous) if isinstance(previous, str) else None
    return Incident(id=incident_id, title=title[:200], service=service, start=iso(t0) or "",
                    end=iso(t1) or "", alert_time=iso(starts), labels=labels,
                    annotations=ann, source="alertmanager", group_key=key, resolved_at=resolved,
                    previous_incident=previous, sources=sources, topology=topo,
                    severity_policy=config.get("severity_policy"))


def incident_from_cli(service: str, start: str, end: str, config: dict[str, Any],
                      incident_id: str | None = None, title: str | None = None) -> Incident:
    """An Incident opened by hand for a service and time window."""
    now = _now()
    t0, t1 = cli_time(start, "--start", now), cli_time(end, "--end", now)
    if t1 <= t0:
        raise InputError(f"--end {iso(t1)} is not after --start {iso(t0)}: swap or fix them")
    if t1 - t0 < MIN_WINDOW:
        raise InputError(f"--start to --end is {(t1 - t0).total_seconds():g} s: at least "
                         f"{MIN_WINDOW.total_seconds() / 60:g} min are needed to see a change")
    if t1 - t0 > pd.Timedelta("7D"):
        raise InputError("--start to --end is longer than 7 days: narrow the window")
    sources, topo = resolve_sources(config)
    check_service(service, known_services(sources), services_where(sources))
    if incident_id is None:
        incident_id = f"{slug(service, 40)}-{t0:%Y%m%dt%H%M}"
    validate_incident_id(incident_id)
    return Incident(id=incident_id, title=title or f"Investigation of {service}",
                    service=service, start=iso(t0) or "", end=iso(t1) or "", source="cli",
                    sources=sources, topology=topo,
                    severity_policy=config.get("severity_policy"))
