"""Status updates from the current numbers (`incident status --update`), appended to the run's
timeline of updates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import InputError, SourceError
from ..core.notes import UPDATES_FILE, load_notes, load_status_updates
from ..core.safe import md_inline
from ..core.storage import atomic_write_json
from ..runs.folder import Run
from ..sources.base import choose_step
from . import triage

__all__ = ["append_status_update"]


def _current_frames(run: Any) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, str | None]:
    """Signals and changes queried now (not recorded); recorded evidence if the backend fails."""

    inc = run.incident
    step = choose_step(inc.start_ts, inc.end_ts)
    try:
        frames = {n: run.metrics.query_signal(n, inc.start_ts, inc.end_ts, step).frame
                  for n in run.signals}
        changes = run.changes.changes(inc.start_ts, inc.end_ts).frame
        fallback = None
    except SourceError as exc:
        idx = run.evidence_index()
        frames = {n: run.evidence(f"signal_{n}") for n in run.signals if f"signal_{n}" in idx}
        changes = run.evidence("changes") if "changes" in idx else pd.DataFrame(
            columns=["time", "service", "type", "id", "description"])
        fallback = " ".join(str(exc).split())[:160]
    for df in [*frames.values(), changes]:
        if len(df):
            df["time"] = pd.to_datetime(df["time"], utc=True)
    return frames, changes, fallback


def append_status_update(run_path: Path, action: str | None = None) -> str:
    """Render a status update from current numbers, append it to the run's timeline, return it."""
    import fcntl


    run = Run(run_path)
    notes = load_notes(run.path)
    frames, changes, fallback = _current_frames(run)
    if not {"error_rate", "traffic", "latency_p99"} <= set(frames):
        raise InputError(f"run {run.incident.id}: no error_rate/traffic/latency_p99 numbers "
                         "(backend unavailable and nothing recorded)")
    why = run.findings("five_whys") or {}
    dec, claim = why.get("decision") or {}, why.get("root_cause") or {}
    rec = (f"{dec['decision']} {dec.get('target') or ''}".strip()
           if dec.get("decision") not in (None, "none") else None)
    tri = triage.run(run, save=False, frames=frames, changes_frame=changes,
                     action=action or notes.get("current_action"),
                     resolved=bool(notes.get("resolved")), recommendation=rec,
                     cause_stated=bool(claim.get("stated")),
                     correlation=run.findings("correlation"))
    upd, severity = tri.status_update, tri.severity
    assert upd is not None and severity is not None  # triage.run always assesses both
    text = upd.text
    if fallback:
        text += (f"\n- **Numbers:** from recorded evidence (backend unavailable: "
                 f"{md_inline(fallback)})")
    record = {"time": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
              "as_of": tri.impact.as_of, "color": upd.color, "state": upd.state,
              "severity": severity.level, "next_update": upd.next_update, "text": text}
    with open(run.path / f".{UPDATES_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        atomic_write_json(run.path / UPDATES_FILE, [*load_status_updates(run.path), record])
    return text
