"""The `notify:` and `links:` sections of incident.yaml, validated at load time.

Both travel into incident.json (with the report settings), so they may hold base URLs and the
NAMES of environment variables only: a webhook URL is a secret (whoever has it can post to the
channel) and is read from the environment when a message is sent, never stored.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["NOTIFY_KINDS", "NOTIFY_EVENTS", "validate_notify", "validate_links"]

NOTIFY_KINDS = ("slack", "mattermost", "teams", "webhook")
NOTIFY_EVENTS = ("triage", "root_cause", "resolved")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_LINK_TOOLS = {"grafana": {"url", "datasource", "org_id"},
               "prometheus": {"url"},
               "kibana": {"url", "data_view", "service_field"}}


def _base_url(value: Any, where: str) -> str:
    """An http(s) base URL without credentials, query or fragment (trailing / removed)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be an http(s) URL such as https://grafana.example.com")
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        raise ConfigError(f"{where} is not a valid URL: use https://host[:port][/path]") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where} must start with http:// or https:// and name a host")
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{where} must be a plain base URL (no user:password@, ?query or "
                          "#fragment): secrets come from the environment")
    return value.strip().rstrip("/")


def validate_notify(value: Any, where: str = "") -> list[dict[str, Any]]:
    """`notify:` as a list of {kind, url_env, events, format?, name}; errors name the field."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}notify must be a list such as "
                          "[{kind: slack, url_env: INCIDENT_SLACK_WEBHOOK}]")
    out, names = [], set()
    for i, item in enumerate(value, start=1):
        field = f"{where}notify[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{field} must be a mapping with kind and url_env")
        kind = item.get("kind")
        if kind not in NOTIFY_KINDS:
            raise ConfigError(f"{field}.kind is {str(kind)[:30]!r}: use one of "
                              f"{', '.join(NOTIFY_KINDS)}")
        if "url" in item or "webhook_url" in item:
            raise ConfigError(f"{field} holds the webhook URL in the file: webhook URLs are "
                              "secrets; put it in an environment variable and name it with "
                              "url_env")
        env = item.get("url_env")
        if not isinstance(env, str) or not _ENV_NAME.fullmatch(env):
            raise ConfigError(f"{field}.url_env must name an environment variable (e.g. "
                              "INCIDENT_SLACK_WEBHOOK)")
        events = item.get("events", list(NOTIFY_EVENTS))
        if (not isinstance(events, list) or not events
                or any(e not in NOTIFY_EVENTS for e in events)):
            raise ConfigError(f"{field}.events must be a list of {', '.join(NOTIFY_EVENTS)}")
        fmt = item.get("format", "blocks" if kind == "slack" else "attachments")
        if kind == "slack" and fmt not in ("blocks", "attachments"):
            raise ConfigError(f"{field}.format must be blocks or attachments")
        if kind == "mattermost" and fmt != "attachments":
            raise ConfigError(f"{field}.format must be attachments (Mattermost does not render "
                              "Slack blocks)")
        unknown = set(item) - {"kind", "url_env", "events", "format", "name"}
        if unknown:
            raise ConfigError(f"{field}: unknown key {sorted(unknown)[0][:30]!r}: use kind, "
                              "url_env, events, format, name")
        name = str(item.get("name") or f"{kind}-{i}")[:40]
        if name in names:
            raise ConfigError(f"{field}.name {name!r} is used twice: give each notifier its own")
        names.add(name)
        spec = {"name": name, "kind": kind, "url_env": env, "events": list(events)}
        if kind in ("slack", "mattermost"):
            spec["format"] = fmt
        out.append(spec)
    return out


def validate_links(value: Any, where: str = "") -> dict[str, Any]:
    """`links:` as {served_runs?, grafana?, prometheus?, kibana?} with checked base URLs."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}links must be a mapping such as "
                          "{grafana: {url: https://grafana.example.com, datasource: prom}}")
    out: dict[str, Any] = {}
    for key, spec in value.items():
        field = f"{where}links.{key}"
        if key == "served_runs":
            out[key] = _base_url(spec, field)
            continue
        if key not in _LINK_TOOLS:
            raise ConfigError(f"{field} is unknown: use served_runs, grafana, prometheus or "
                              "kibana")
        if not isinstance(spec, dict):
            raise ConfigError(f"{field} must be a mapping with url")
        unknown = set(spec) - _LINK_TOOLS[key]
        if unknown:
            raise ConfigError(f"{field}: unknown key {sorted(unknown)[0][:30]!r}: use "
                              f"{', '.join(sorted(_LINK_TOOLS[key]))}")
        clean = {k: v for k, v in spec.items() if k != "url"}
        clean["url"] = _base_url(spec.get("url"), f"{field}.url")
        if key == "grafana" and not isinstance(spec.get("datasource"), str):
            raise ConfigError(f"{field}.datasource must be the uid of your Prometheus data "
                              "source in Grafana (Connections > Data sources > its URL)")
        if key == "kibana" and not isinstance(spec.get("data_view"), str):
            raise ConfigError(f"{field}.data_view must be the id of the Kibana data view "
                              "(index pattern) holding the logs")
        if key == "grafana":
            org = spec.get("org_id", 1)
            if isinstance(org, bool) or not isinstance(org, int) or org < 1:
                raise ConfigError(f"{field}.org_id must be a positive integer")
            clean["org_id"] = org
        if key == "kibana":
            sf = spec.get("service_field", "service.name")
            if not isinstance(sf, str) or not re.fullmatch(r"[A-Za-z0-9_.@-]{1,100}", sf):
                raise ConfigError(f"{field}.service_field must be a field name such as "
                                  "service.name")
            clean["service_field"] = sf
        out[key] = clean
    return out
