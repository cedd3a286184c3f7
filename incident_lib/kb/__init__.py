"""Knowledge base of past incidents: entries, similar-incident search, incident metrics."""

from __future__ import annotations

from .entries import (
    KBEntry,
    kb_root,
    load_kb,
    parse_entry,
    symptoms_of_run,
    triage_from_sections,
)
from .record import build_entry, render_entry, write_entry
from .similar import matches_markdown, similar_incidents, similar_section
from .stats import compute_stats, incident_table, write_stats

__all__ = ["KBEntry", "build_entry", "kb_root", "load_kb", "parse_entry", "write_entry",
           "render_entry", "symptoms_of_run", "triage_from_sections",
           "similar_incidents", "similar_section", "matches_markdown", "compute_stats",
           "incident_table", "write_stats"]
