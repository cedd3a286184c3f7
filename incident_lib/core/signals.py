"""Load the named signals and render their PromQL with safely quoted label filters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from .errors import InputError

__all__ = ["Signal", "signals", "get_signal", "signal_set", "preset_names", "promql_string",
           "selector", "render_promql", "ROLES"]

ROLES = ("error_rate", "latency", "traffic", "saturation", "other")
_GOLDEN_ROLE = {"errors": "error_rate", "latency": "latency", "traffic": "traffic",
                "saturation": "saturation"}
_ROLE_GOLDEN = {"error_rate": "errors", "latency": "latency", "traffic": "traffic",
                "saturation": "saturation", "other": "other"}

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Signal:
    """One named signal with its backend definitions."""

    name: str
    title: str
    golden: str
    unit: str
    direction: str
    promql: str
    files: dict[str, Any]
    kind: str = "gauge"
    role: str = "other"
    table: dict[str, Any] | None = None


def _signal(name: str, d: Any, where: str) -> Signal:
    """One Signal from its YAML definition; InputError naming the bad field."""
    if not isinstance(d, dict):
        raise InputError(f"{where}: signal {name[:40]!r} must be a mapping of fields")
    kind = str(d.get("kind", "gauge"))
    if kind not in ("gauge", "counter"):
        raise InputError(f"{where}: signals.{name}.kind {kind[:20]!r} is invalid: use gauge "
                         "or counter")
    role = str(d.get("role") or _GOLDEN_ROLE.get(str(d.get("golden")), "other"))
    if role not in ROLES:
        raise InputError(f"{where}: signals.{name}.role {role[:20]!r} is invalid: use "
                         f"{' | '.join(ROLES)}")
    direction = str(d.get("direction", "up"))
    if direction not in ("up", "down", "both"):
        raise InputError(f"{where}: signals.{name}.direction {direction[:20]!r} is invalid: "
                         "use up, down or both")
    table = {k: d[k] for k in ("column", "metric", "agg", "scale") if k in d} or None
    if "unit" not in d:
        raise InputError(f"{where}: signals.{name}.unit is missing: add the unit (e.g. "
                         "seconds, ratio, cores, bytes)")
    return Signal(name=name, title=str(d.get("title") or name), golden=str(
        d.get("golden") or _ROLE_GOLDEN[role]), unit=str(d["unit"]), direction=direction,
        promql=" ".join(str(d.get("promql", "")).split()), files=dict(d.get("files") or {}),
        kind=kind, role=role, table=table)


@lru_cache(maxsize=8)
def _preset(name: str) -> dict[str, Signal]:
    fname = "signals.yaml" if name == "default" else f"signals_{name}.yaml"
    res = resources.files(__package__ or "incident_lib").joinpath(fname)
    if not res.is_file():
        raise InputError(f"signals_preset {name[:40]!r} is unknown: use one of "
                         f"{', '.join(preset_names())}")
    data = yaml.safe_load(res.read_text("utf-8"))
    return {n: _signal(n, d, fname) for n, d in data["signals"].items()}


def preset_names() -> list[str]:
    """Names of the bundled signal presets (signals_<name>.yaml; `default` is signals.yaml)."""
    names = ["default"]
    for res in resources.files(__package__ or "incident_lib").iterdir():
        m = re.fullmatch(r"signals_([a-z0-9_]+)\.yaml", res.name)
        if m:
            names.append(m.group(1))
    return sorted(names)


def signals() -> dict[str, Signal]:
    """The default signals (signals.yaml), by name."""
    return _preset("default")


def signal_set(spec: dict[str, Any] | None) -> dict[str, Signal]:
    """The signals a deployment declares: a `signals_preset` and/or its own `signals`.

    `spec` is the metrics source spec (resolve_sources copies the config's top-level
    `signals_preset` / `signals` into it). Neither given: the default preset (signals.yaml).
    Only `signals`: exactly those. Both: the preset, with declared signals added/replaced.
    """
    spec = spec or {}
    declared = spec.get("signals") or {}
    preset = spec.get("signals_preset") or (None if declared else "default")
    out = dict(_preset(str(preset))) if preset else {}
    if not isinstance(declared, dict):
        raise InputError("config: signals must map signal names to definitions")
    for name, d in declared.items():
        out[str(name)] = _signal(str(name), d, "config")
    return out


def get_signal(name: str) -> Signal:
    """Signal by name, or InputError listing the known ones."""
    try:
        return signals()[name]
    except KeyError:
        raise InputError(
            f"signal {name[:40]!r} is unknown: use one of {', '.join(sorted(signals()))}"
        ) from None


def promql_string(value: str) -> str:
    """Quote any text as a PromQL double-quoted string literal (never pasted raw)."""
    out = ['"']
    for ch in str(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def selector(filters: dict[str, str] | None) -> str:
    """Equality matchers `name="value",...` with names checked and values quoted."""
    parts = []
    for name, value in sorted((filters or {}).items()):
        if not _LABEL_NAME.match(name):
            raise InputError(f"label name {name[:40]!r} is invalid: use [a-zA-Z_][a-zA-Z0-9_]*")
        parts.append(f"{name}={promql_string(value)}")
    return ",".join(parts)


def render_promql(signal: Signal, filters: dict[str, str] | None = None) -> str:
    """The signal's PromQL with filters inserted as escaped literals."""
    return signal.promql.replace("<<sel>>", selector(filters))
