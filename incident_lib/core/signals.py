"""Load the named signals and render their PromQL with safely quoted label filters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from .errors import InputError

__all__ = ["Signal", "signals", "get_signal", "promql_string", "selector", "render_promql"]

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


@lru_cache(maxsize=1)
def signals() -> dict[str, Signal]:
    """All metric signals from signals.yaml, by name."""
    text = resources.files("incident_lib.core").joinpath("signals.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    out = {}
    for name, d in data["signals"].items():
        out[name] = Signal(
            name=name,
            title=d["title"],
            golden=d["golden"],
            unit=d["unit"],
            direction=d.get("direction", "up"),
            promql=" ".join(d["promql"].split()),
            files=d["files"],
        )
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
