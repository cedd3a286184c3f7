"""Settings: where telemetry comes from, the severity policy, secrets from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import yaml

from .errors import ConfigError, InputError
from .integrations import validate_links, validate_notify
from .model import Severity

__all__ = ["load_config", "resolve_sources", "DEFAULT_SEVERITY_POLICY", "POLICY_CONDITIONS",
           "validate_severity_policy", "validate_reference", "secret_from_env",
           "check_no_credentials"]

# Ordered rules: the first whose conditions all hold gives the severity.
DEFAULT_SEVERITY_POLICY: list[dict[str, Any]] = [
    {"level": "P0", "customer_error_share_min": 0.5},  # most customer requests failing: down
    {"level": "P1", "customer_error_share_min": 0.05},
    {"level": "P1", "affected_services_min": 3, "customer_error_share_min": 0.02},
    {"level": "P2", "customer_error_share_min": 0.01},
    {"level": "P2", "customer_latency_ratio_min": 3.0},
    {"level": "P3", "affected_services_min": 1},
    {"level": "P4"},
]
# Conditions a severity rule may test: condition -> (measured impact field, description).
POLICY_CONDITIONS: dict[str, tuple[str, str]] = {
    "customer_error_share_min": ("customer_error_share",
                                 "share of customer-facing requests failing"),
    "customer_latency_ratio_min": ("customer_latency_ratio", "customer-facing p99 / baseline"),
    "affected_services_min": ("affected_services", "services affected"),
}
_SOURCE_KINDS = {"files", "prometheus", "elasticsearch"}
# Optional settings of the report (the severity policy has its own Incident field):
# `alert_for` (the `for:` of your alerts; early-signal advice needs that much lead, and the
# incident window starts at most alert_for + 2 min before the alert; default 5m), `reference`
# ({start, end}: a known-normal period, validate_reference), `slo` ({target: 0.999,
# window_days: 30}) for error-budget burn,
# `status_cadence_minutes` ({P1: 15, ...}) between status updates, `severity_scale`
# ({P0: {sev: SEV1, name: critical}, ...}) for SEV levels and names (model.py: the default);
# `notify` (chat notifiers) and `links` (Grafana/Prometheus/Kibana, served runs), see
# integrations.py.
REPORT_KEYS = ("severity_scale", "alert_for", "slo", "status_cadence_minutes", "reference",
               "notify", "links")
_SECRET_KEYS = {"token", "password", "api_key", "apikey", "secret", "authorization"}


def load_config(path: str | Path | None = None, data_dir: str | Path | None = None) -> dict:
    """Read the YAML config (--config, INCIDENT_CONFIG, or <data_dir>/incident.yaml)."""
    if path is None and data_dir is not None:
        path = Path(data_dir) / "incident.yaml"
    if path is None:
        path = os.environ.get("INCIDENT_CONFIG")
    if path is None:
        raise InputError("no telemetry configured: pass --data DIR or --config FILE "
                         "(or set INCIDENT_CONFIG); `incident demo` makes a demo dataset")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file {p} does not exist: pass --config with an existing file")
    try:
        data = yaml.safe_load(p.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise InputError(f"config file {p}{where} is not valid YAML: fix its syntax") from None
    if not isinstance(data, dict) or "sources" not in data:
        raise InputError(f"config file {p} has no 'sources' section: add sources.metrics/logs/"
                         "changes")
    for key in data:
        if key.lower() in _SECRET_KEYS:
            raise InputError(f"config file {p} holds a secret under {key!r}: put secrets in the "
                             "environment and name the variable (e.g. token_env: PROM_TOKEN)")
    if data.get("severity_policy") is not None:
        data["severity_policy"] = validate_severity_policy(data["severity_policy"], f"{p}: ")
    if data.get("reference") is not None:
        data["reference"] = validate_reference(data["reference"], f"{p}: ")
    # chat notifiers and links to the team's tools (integrations.py): names of secrets only
    data["notify"] = validate_notify(data.get("notify"), f"{p}: ") or None
    data["links"] = validate_links(data.get("links"), f"{p}: ") or None
    for kind in ("metrics", "logs", "changes", "spans"):
        spec = (data["sources"] or {}).get(kind) if isinstance(data["sources"], dict) else None
        kinds = _SOURCE_KINDS if kind != "spans" else {"files"}
        if kind in ("changes", "spans"):
            kinds = kinds | {"none"}  # optional: absent or `none` = empty, and the run says so
        if isinstance(spec, dict) and spec.get("kind") not in kinds:
            raise ConfigError(f"{p}: sources.{kind}.kind is {str(spec.get('kind'))[:40]!r}: use "
                              f"one of {', '.join(sorted(kinds))}")
    if isinstance(data["sources"], dict):
        check_no_credentials(data["sources"])  # at load: `incident serve` fails at startup
    data["_base"] = str(p.parent.resolve())
    return data


def validate_reference(ref: Any, where: str = "") -> dict[str, str]:
    """`reference: {start, end}`: a period known to be normal (ISO-8601 times, start < end).

    When given, the root-cause ranking compares log lines and spans of the incident with this
    period instead of the period just before the window (which may hold an earlier fault);
    metric samples of it are pooled into the metric baseline."""
    if not isinstance(ref, dict) or set(ref) != {"start", "end"}:
        raise ConfigError(f"{where}reference must be {{start: <time>, end: <time>}} (ISO-8601)")
    times = {}
    for key in ("start", "end"):
        try:
            t = pd.Timestamp(str(ref[key]))
        except ValueError:
            raise ConfigError(f"{where}reference.{key} is not a time: use ISO-8601 such as "
                              "2023-01-29T08:49:00Z") from None
        times[key] = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if times["start"] >= times["end"]:
        raise ConfigError(f"{where}reference.start must be before reference.end")
    return {k: v.isoformat() for k, v in times.items()}


def validate_severity_policy(policy: Any, where: str = "") -> list[dict[str, Any]]:
    """The policy as ordered rules with parseable levels and known numeric conditions."""
    if not isinstance(policy, list) or not policy:
        raise ConfigError(f"{where}severity_policy must be a non-empty list of rules such as "
                          "{level: P1, customer_error_share_min: 0.05}")
    out = []
    for i, rule in enumerate(policy, start=1):
        if not isinstance(rule, dict) or "level" not in rule:
            raise ConfigError(f"{where}severity_policy rule {i} needs a level (e.g. P1)")
        try:
            Severity.parse(rule["level"])
        except InputError as exc:
            raise ConfigError(f"{where}severity_policy rule {i}: {exc}") from None
        for key, value in rule.items():
            if key == "level":
                continue
            if key not in POLICY_CONDITIONS:
                raise ConfigError(f"{where}severity_policy rule {i}: unknown condition {key!r}: "
                                  f"use {', '.join(POLICY_CONDITIONS)}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}severity_policy rule {i}: {key} must be a number")
        out.append(dict(rule))
    return out


def _holds_credentials(value: str) -> bool:
    """True for a URL with user:password@ or a secret-looking query parameter."""
    if "://" not in value:
        return False
    try:
        parts = urlsplit(value.strip())
        query = parse_qsl(parts.query)
    except ValueError:
        return "@" in value.split("://", 1)[1].split("/", 1)[0]
    return ("@" in parts.netloc or any(k.lower() in _SECRET_KEYS | {"access_token", "auth"}
                                       for k, _ in query))


def check_no_credentials(sources: dict[str, Any]) -> None:
    """Refuse credentials written into backend URLs (they would land in incident.json, the
    report and logs); the error names the field, never its value."""
    for kind, spec in (sources or {}).items():
        for key, value in (spec or {}).items() if isinstance(spec, dict) else ():
            if isinstance(value, str) and _holds_credentials(value):
                raise ConfigError(f"config: sources.{kind}.{key} holds credentials in the URL: "
                                 "remove them and use username + password_env, token_env or "
                                 "api_key_env (secrets come from the environment)")


def resolve_sources(config: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sources with paths made absolute, and the topology; secrets stay env-var names only.

    metrics and logs are required; changes and spans are optional (kind none: empty, stated).
    The top-level `signals_preset` / `signals` go into the metrics spec and `pod_service`
    (the pod -> service rule) into every spec, so incident.json holds all a run needs.
    """
    base = Path(config.get("_base", "."))
    sources: dict[str, Any] = {}
    for kind in ("metrics", "logs", "changes", "spans"):
        spec = dict(config["sources"].get(kind) or {})
        if not spec and kind in ("changes", "spans"):
            spec = {"kind": "none"}
        if not spec:
            raise InputError(f"config: sources.{kind} is missing: add kind and path/url")
        if config.get("pod_service"):
            spec.setdefault("pod_service", config["pod_service"])
        if kind == "metrics":
            for key in ("signals_preset", "signals"):
                if config.get(key):
                    spec.setdefault(key, config[key])
            from .signals import signal_set

            signal_set(spec)  # a bad declaration fails here, naming the field
        for k in spec:
            if k.lower() in _SECRET_KEYS:
                raise InputError(f"config: sources.{kind}.{k} is a secret in the file: use "
                                 f"{k}_env with the name of an environment variable")
        if spec.get("kind") == "files":
            paths = spec["path"] if isinstance(spec.get("path"), list) else [spec.get("path")]
            if not paths or any(not isinstance(x, str) or not x for x in paths):
                raise ConfigError(f"config: sources.{kind}.path must be a file or glob, or a "
                                  "list of them")
            absolute = [str((base / x).resolve()) for x in paths]
            spec["path"] = absolute if isinstance(spec["path"], list) else absolute[0]
        if spec.get("ca_bundle"):  # notebooks run in the run folder: make it absolute
            spec["ca_bundle"] = str((base / spec["ca_bundle"]).resolve())
        sources[kind] = spec
    check_no_credentials(sources)
    topo = config.get("topology") or {}
    if isinstance(topo, str):
        tpath = base / topo
        if not tpath.is_file():
            raise InputError(f"config: topology file {tpath} does not exist: fix the path")
        topo = yaml.safe_load(tpath.read_text("utf-8")) or {}
    for key in REPORT_KEYS:  # report settings travel with the topology into incident.json
        if config.get(key) is not None:
            topo = {**topo, key: config[key]}
    return sources, topo


def secret_from_env(spec: dict[str, Any], key: str) -> str | None:
    """Read a secret named by spec['<key>_env'] from the environment (never stored)."""
    var = spec.get(f"{key}_env")
    return os.environ.get(var) if var else None
