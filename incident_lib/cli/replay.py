"""`incident replay` and `incident export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..pipeline.archive import export_run
from ..pipeline.replay import replay_run
from ..runs.folder import resolve_run

__all__ = ["register", "cmd_replay", "cmd_export"]


def cmd_replay(args: argparse.Namespace) -> int:
    """`incident replay RUN`: re-execute offline from evidence and compare findings."""
    res = replay_run(resolve_run(args.run), args.id, cell_timeout=args.timeout)
    for name, st in res.status["stages"].items():
        extra = f" ({st.get('error')})" if st.get("error") else ""
        print(f"  {name:<12} {st['state']}{extra}", file=sys.stderr)
    if res.identical:
        print(f"replay {res.replay}: findings identical to {res.original.name}")
        return 0
    print(f"replay {res.replay}: findings differ from {res.original.name}:")
    for d in res.differences:
        print(f"  {d}")
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    """`incident export RUN`: one archive with a checksummed manifest, plus notebooks HTML."""
    archive, html = export_run(resolve_run(args.run), Path(args.out) if args.out else None)
    print(archive)
    if html is not None:
        print(html)
    return 0


def register(sub: Any) -> None:
    """Add the `replay` and `export` sub-commands."""
    r = sub.add_parser("replay", help="re-execute a run offline from its evidence; compare")
    r.add_argument("run", help="incident id or run folder")
    r.add_argument("--id", help="id of the replay run (default <id>-replay)")
    r.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    r.set_defaults(func=cmd_replay)
    e = sub.add_parser("export", help="archive a run (checksummed manifest) + notebooks HTML")
    e.add_argument("run", help="incident id or run folder")
    e.add_argument("--out", help="archive path (default <runs>/<id>.export.tar.gz)")
    e.set_defaults(func=cmd_export)
