"""`incident kb add|search` and `incident stats`."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.errors import InputError
from ..kb.entries import _warn, load_kb
from ..kb.record import write_entry
from ..kb.similar import matches_markdown, similar_incidents
from ..kb.stats import write_stats
from ..runs.folder import resolve_run

__all__ = ["register", "cmd_kb_add", "cmd_kb_search", "cmd_stats"]


def cmd_kb_add(args: argparse.Namespace) -> int:
    """`incident kb add RUN`: write the run's KB entry."""
    print(write_entry(resolve_run(args.run), args.kb))
    return 0


def cmd_kb_search(args: argparse.Namespace) -> int:
    """`incident kb search RUN|--text`: rank past incidents by similarity."""
    entries, problems = load_kb(args.kb)
    _warn(problems)
    if args.run:
        from ..runs.folder import Run

        df = similar_incidents(Run(resolve_run(args.run)), args.kb, args.top, entries=entries)
    elif args.text or args.service:
        sym = {"services": args.service or [], "text": args.text or "",
               "templates": [args.text] if args.text else []}
        df = similar_incidents(None, args.kb, args.top, symptoms=sym, entries=entries)
    else:
        raise InputError("kb search needs a RUN, --text or --service")
    print(matches_markdown(df) if len(df) else "No matching past incidents.\n", end="")
    return 0


def register(sub: Any) -> None:
    """Add the `kb` (search, add) and `stats` sub-commands."""
    kb = sub.add_parser("kb", help="knowledge base of past incidents (search, add)")
    kbs = kb.add_subparsers(dest="kb_cmd", required=True)
    a = kbs.add_parser("add", help="write a run's KB entry (<kb>/<id>.md)")
    a.add_argument("run", help="incident id or run folder")
    a.set_defaults(func=cmd_kb_add)
    s = kbs.add_parser("search", help="past incidents most similar to a run (or --text)")
    s.add_argument("run", nargs="?", help="incident id or run folder")
    s.add_argument("--text", help="free text (e.g. a log line or symptom)")
    s.add_argument("--service", action="append", help="service (repeatable)")
    s.add_argument("--top", type=int, default=5)
    for p in (a, s):
        p.add_argument("--kb", help="KB folder (default INCIDENT_KB_DIR or ./kb)")
    s.set_defaults(func=cmd_kb_search)
    st = sub.add_parser("stats", help="MTTD/MTTA/MTTR, frequency, repeats, action completion")
    st.add_argument("--kb", help="KB folder (default INCIDENT_KB_DIR or ./kb)")
    st.add_argument("--out", help="output folder (default <kb>/stats)")

    st.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    """`incident stats`: metrics of the KB as Markdown + CSV + plots."""
    path, _, problems = write_stats(args.kb, args.out)
    _warn(problems)
    print(path)
    return 0
