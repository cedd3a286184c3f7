"""Status updates from the current numbers (`incident status --update`), appended to the run's
timeline of updates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import InputError, SourceError
from ..core.notes import UPDATES_FILE, load_notes, load_status_updates

__all__ = ["append_status_update"]


def _current_frames(run: Any) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, str | None]:
    """Signals and changes queried now (not recorded); recorded evidence if the backend fails."""
    from ..core.signals import signals
    from ..sources.base import choose_step

    inc = run.incident
    step = choose_step(inc.start_ts, inc.end_ts)
    try:
        frames = {n: run.metrics.query_signal(n, inc.start_ts, inc.end_ts, step).frame
                  for n in signals()}
        changes = run.changes.changes(inc.start_ts, inc.end_ts).frame
        fallback = None
    except SourceError as exc:
        idx = run.evidence_index()
        frames = {n: run.evidence(f"signal_{n}") for n in signals() if f"signal_{n}" in idx}
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

    from ..core.safe import md_inline
    from ..core.storage import atomic_write_json
    from ..report.display import Section
    from ..runs.folder import Run
    from . import triage

    run = Run(run_path)
    notes = load_notes(run.path)
    frames, changes, fallback = _current_frames(run)
    if not {"error_rate", "traffic", "latency_p99"} <= set(frames):
        raise InputError(f"run {run.incident.id}: no error_rate/traffic/latency_p99 numbers "
                         "(backend unavailable and nothing recorded)")
    sig = Section("Golden signals", "", {"frames": frames, "no_data": []})
    onset = triage.detect_onset(run, sig)
    impact = triage.measure_impact(run, sig, onset)
    if notes.get("resolved"):
        impact.data["status"] = "resolved"
    severity = triage.assess(run, impact)
    upd = triage.status_update(run, severity, impact, Section("Changes", "", {"frame": changes}),
                               action or notes.get("current_action"))
    text = upd.data["text"]
    if fallback:
        text += (f"\n- **Numbers:** from recorded evidence (backend unavailable: "
                 f"{md_inline(fallback)})")
    record = {"time": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
              "as_of": impact.data.get("as_of"), "color": upd.data["color"],
              "state": upd.data["state"], "severity": severity.data["level"],
              "next_update": upd.data["next_update"], "text": text}
    with open(run.path / f".{UPDATES_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        atomic_write_json(run.path / UPDATES_FILE, [*load_status_updates(run.path), record])
    return text
