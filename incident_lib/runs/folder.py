"""A run folder: incident.json, evidence/, findings/, report files."""

from __future__ import annotations

import json
import os
import typing
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.errors import InputError, StageError
from ..core.findings import (
    CorrelationFindings,
    Findings,
    FiveWhysFindings,
    TriageFindings,
    load_findings,
)
from ..core.model import FINDINGS_SCHEMA, Incident, iso
from ..core.redact import redact_series, redact_text
from ..core.signals import Signal, signal_set
from ..sources.base import ChangeSource, LogSource, MetricSource, QueryResult, SpanSource
from ..core.storage import (
    atomic_write_json,
    atomic_write_with,
    runs_root,
    validate_incident_id,
)

__all__ = ["Run", "build_sources", "resolve_run", "run_path", "STAGES", "DEMO_RUN_ID",
           "evidence_health"]

STAGES = ["triage", "correlation", "five_whys", "postmortem"]
DEMO_RUN_ID = "demo-payments"
# Which evidence records belong to which kind of telemetry (by recorded name).
EVIDENCE_KINDS = {"metrics": ("signal_",), "logs": ("log_volume", "logs", "field_counts"),
                  "changes": ("changes",)}


def evidence_health(index: dict[str, Any]) -> dict[str, Any]:
    """What the recorded evidence cannot support: per kind (metrics/logs/changes) whether it
    was recorded, how many queries came back empty or partial, the series with NaN/Inf
    samples, and a one-line summary (empty when all is well)."""
    kinds: dict[str, dict[str, Any]] = {}
    nonfinite: list[str] = []
    for kind, prefixes in EVIDENCE_KINDS.items():
        names = [n for n in index if any(n == p or (p.endswith("_") and n.startswith(p))
                                         for p in prefixes)]
        metas = [index[n] for n in names]
        kinds[kind] = {
            "recorded": len(names),
            "empty": sorted(n for n, m in zip(names, metas, strict=True) if not m.get("rows")),
            "partial": sorted(n for n, m in zip(names, metas, strict=True) if m.get("partial")),
            "rows": int(sum(int(m.get("rows") or 0) for m in metas)),
        }
        for m in metas:
            for series in (m.get("notes") or {}).get("nonfinite_series") or []:
                if series not in nonfinite:
                    nonfinite.append(str(series))
    problems = []
    missing = [k for k, v in kinds.items() if v["recorded"] and not v["rows"]]
    if missing:
        problems.append(f"no {' and no '.join(missing)} in the window (0 rows)")
    for kind, v in kinds.items():
        if v["rows"] and v["empty"]:
            problems.append(f"{len(v['empty'])} of {v['recorded']} {kind} queries returned "
                            "0 rows")
        if v["partial"]:
            problems.append(f"{kind} partial ({', '.join(v['partial'][:3])})")
    if nonfinite:
        problems.append(f"NaN/Inf samples in {len(nonfinite)} series ({nonfinite[0]}"
                        + (", ..." if len(nonfinite) > 1 else "") + ")")
    return {"kinds": kinds, "missing": missing, "nonfinite_series": nonfinite[:20],
            "summary": "; ".join(problems)}


def build_sources(sources: dict[str, Any]) -> tuple[MetricSource, LogSource, ChangeSource]:
    """Instantiate the three backends from the incident's sources section."""
    from ..sources import make_change_source, make_log_source, make_metric_source

    return (
        make_metric_source(sources["metrics"]),
        make_log_source(sources["logs"]),
        make_change_source(sources["changes"]),
    )


class Run:
    """One investigation's folder and what the notebooks read and write there."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        f = self.path / "incident.json"
        if not f.is_file():
            raise InputError(f"run folder {self.path} has no incident.json: create it with "
                             "`incident run` or pass an existing run folder")
        self.incident = Incident.from_dict(json.loads(f.read_text("utf-8")))
        self._sources: dict[str, Any] = {}
        self.redact = os.environ.get("INCIDENT_REDACT", "1") != "0"

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def metrics(self) -> MetricSource:
        """The metrics backend (built on first use, so one missing backend spares the others)."""
        from ..sources import make_metric_source

        return self._source("metrics", make_metric_source)

    @property
    def logs(self) -> LogSource:
        """The logs backend."""
        from ..sources import make_log_source

        return self._source("logs", make_log_source)

    @property
    def changes(self) -> ChangeSource:
        """The changes backend."""
        from ..sources import make_change_source

        return self._source("changes", make_change_source)

    @property
    def spans(self) -> SpanSource:
        """The spans backend (none configured: an empty source that says so)."""
        from ..sources import make_span_source

        return self._source("spans", make_span_source)

    @property
    def signals(self) -> dict[str, Signal]:
        """The metric signals this deployment declares (default: signals.yaml)."""
        return signal_set(self.incident.sources.get("metrics"))

    def _source(self, kind: str, factory: Any) -> Any:
        if kind not in self._sources:
            spec = self.incident.sources.get(kind)
            if spec is None and kind in ("changes", "spans"):
                spec = {"kind": "none"}
            self._sources[kind] = factory(spec)
        return self._sources[kind]

    def dir(self, name: str) -> Path:
        """A sub-folder of the run (created)."""
        d = self.path / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def record(
        self, name: str, result: QueryResult, stage: str, redacted: bool = False
    ) -> pd.DataFrame:
        """Save a query result as evidence/<name>.parquet with its query text; return the frame.

        Message/description text is redacted (PII) unless redaction is off or already done.
        """
        frame = result.frame.copy()
        warnings, notes = list(result.warnings)[:20], result.notes
        if self.redact and not redacted:  # every text field, and what the backend said
            frame = redact_frame(frame)
        if self.redact:
            warnings, notes = _redact_json(warnings), _redact_json(notes)
        meta = {
            "name": name,
            "stage": stage,
            "query": result.query,
            "backend": result.backend,
            "rows": int(len(frame)),
            "partial": bool(result.partial),
            "warnings": warnings,
            "notes": notes,
            "recorded": iso(datetime.now(UTC)),
        }
        table = pa.Table.from_pandas(_parquet_safe(frame), preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"incident_lib": json.dumps(meta, default=str)}
        )
        path = self.dir("evidence") / f"{name}.parquet"
        atomic_write_with(path, lambda tmp: pq.write_table(table, tmp))
        index_path = self.path / "evidence" / "index.json"
        index = json.loads(index_path.read_text("utf-8")) if index_path.is_file() else {}
        index[name] = meta
        atomic_write_json(index_path, index)
        return frame

    def evidence(self, name: str) -> pd.DataFrame:
        """Load a recorded evidence frame."""
        return pq.read_table(self.path / "evidence" / f"{name}.parquet").to_pandas()

    def evidence_index(self) -> dict[str, Any]:
        """Metadata of all recorded evidence (query text, rows, partial, warnings)."""
        p = self.path / "evidence" / "index.json"
        return json.loads(p.read_text("utf-8")) if p.is_file() else {}

    def evidence_health(self) -> dict[str, Any]:
        """Which evidence kinds had 0 rows, partial answers or NaN/Inf samples (see
        evidence_health())."""
        return evidence_health(self.evidence_index())

    def save_findings(self, stage: str, data: dict[str, Any] | Findings) -> Path:
        """Write findings/<stage>.json atomically in the versioned envelope."""
        if stage not in STAGES:
            raise StageError(f"unknown stage {stage!r}")
        if isinstance(data, Findings):
            data = data.to_dict()
        envelope = {
            "schema": FINDINGS_SCHEMA,
            "stage": stage,
            "incident_id": self.incident.id,
            "run_token": os.environ.get("INCIDENT_RUN_TOKEN", ""),
            "created": iso(datetime.now(UTC)),
            "data": data,
        }
        path = self.dir("findings") / f"{stage}.json"
        atomic_write_json(path, envelope)
        return path

    def clean_messages(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame with personal data redacted from its text columns (if redaction is on)."""
        return redact_frame(frame) if self.redact else frame

    def findings(self, stage: str) -> dict[str, Any] | None:
        """A stage's findings data, or None if that stage did not produce any."""
        p = self.path / "findings" / f"{stage}.json"
        if not p.is_file():
            return None
        try:
            env = json.loads(p.read_text("utf-8"))
        except json.JSONDecodeError:
            return None
        return env.get("data")

    def load_findings(self, stage: str) -> Findings | None:
        """A stage's typed findings (TriageFindings, CorrelationFindings, ...), or None."""
        return load_findings(stage, self.findings(stage))

    def triage(self) -> TriageFindings | None:
        """The typed triage findings, or None if triage did not produce any."""
        return typing.cast(TriageFindings | None, self.load_findings("triage"))

    def correlation(self) -> CorrelationFindings | None:
        """The typed correlation findings, or None."""
        return typing.cast(CorrelationFindings | None, self.load_findings("correlation"))

    def five_whys(self) -> FiveWhysFindings | None:
        """The typed 5 Whys findings, or None."""
        return typing.cast(FiveWhysFindings | None, self.load_findings("five_whys"))

    def status(self) -> dict[str, Any]:
        """The runner's status.json (empty when run by hand)."""
        p = self.path / "status.json"
        return json.loads(p.read_text("utf-8")) if p.is_file() else {}


# Generated identifiers, not personal data. A digit-only span id passes the Luhn check about
# once in 20,000 spans; redacted to <card>, unrelated spans would share one parent.
ID_COLUMNS = frozenset({"trace_id", "span_id", "parent_id"})


def redact_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every all-text column redacted (None stays None, other types untouched),
    except the trace and span identifiers (ID_COLUMNS)."""
    out = frame.copy()
    if not len(out):
        return out
    for col in out.columns:
        values = out[col]
        text = values.dtype == object or pd.api.types.is_string_dtype(values)
        if col == "time" or col in ID_COLUMNS or not text:
            continue
        if not values.map(lambda v: isinstance(v, str)
                          or (pd.api.types.is_scalar(v) and pd.isna(v))).all():
            continue
        red = redact_series(values).astype(object).where(values.notna(), None)
        out[col] = red if values.dtype == object else red.astype(values.dtype)
    return out


def _redact_json(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact_json(v) for k, v in value.items()}
    return value


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return out


def new_run_token() -> str:
    """A random token identifying one runner execution of a stage."""
    return uuid.uuid4().hex


def resolve_run(value: str) -> Path:
    """A run folder from an incident id under runs/ or a folder path; InputError if absent."""
    p = Path(value)
    if (p / "incident.json").is_file():
        return p.resolve()
    path = run_path(value)
    if not (path / "incident.json").is_file():
        raise InputError(f"run {value[:80]!r} not found: pass an incident id under runs/ or a "
                         "run folder")
    return path


def run_path(incident_id: str, root: Path | None = None) -> Path:
    """runs/<id>, after checking the id cannot escape the runs folder."""
    validate_incident_id(incident_id)
    base = (root or runs_root()).resolve()
    path = (base / incident_id).resolve()
    if path.parent != base:
        raise InputError(f"incident id {incident_id!r} would leave the runs folder")
    return path
