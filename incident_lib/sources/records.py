"""Real shapes of log records: nested ECS objects and epoch-number timestamps.

Exports write `{"service": {"name": ...}}` as often as `service.name`, and `@timestamp` as
epoch seconds, milliseconds, micro- or nanoseconds; both are read here, and the unit that was
inferred is stated so nobody mistakes a guess for data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["epoch_unit", "flatten", "flat_table", "row_time", "units_note"]

# Epoch numbers: the unit is inferred from the size (times between 1973 and 2286 in each unit).
_EPOCH_UNITS = [(1e11, "s"), (1e14, "ms"), (1e17, "us"), (float("inf"), "ns")]


def epoch_unit(value: float) -> str:
    """s, ms, us or ns for an epoch number, inferred from its size."""
    return next(unit for limit, unit in _EPOCH_UNITS if abs(value) < limit)


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested ECS objects ({"service": {"name": ...}}) as dotted keys (service.name)."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def flat_table(table: pa.Table) -> pa.Table:
    """Struct columns (nested ECS read by Arrow) flattened to dotted names."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table


def row_time(value: Any, units: set[str]) -> pd.Timestamp:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    if isinstance(value, int | float):
        unit = epoch_unit(value)
        units.add(unit)
        return pd.Timestamp(value, unit=unit, tz="UTC")
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("empty time")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def units_note(path: Path, time_field: str, units: set[str]) -> str:
    names = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
    return (f"{path.name}: {time_field} holds epoch numbers, read as "
            f"{' and '.join(names[u] for u in sorted(units))} since 1970 (unit inferred from "
            "their size)")


