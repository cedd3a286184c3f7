"""`incident` command line: demo, run, status, report, templates."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from ..core.config import load_config
from ..core.errors import IncidentError, InputError
from ..demo.generator import DemoSpec, generate_demo
from ..pipeline.alerts import incident_from_alert, incident_from_cli, load_alert_file
from ..pipeline.runner import create_run, demo_data_dir, execute
from ..runs.folder import Run, resolve_run
from ..stages.postmortem import render_report
from .templates import cmd_templates

__all__ = ["main", "PLUGINS"]

# Modules that add sub-commands (serve, lab, kb, stats, replay, export) through register(sub).
PLUGINS = ["incident_lib.cli.serve", "incident_lib.cli.lab", "incident_lib.cli.kb",
           "incident_lib.cli.replay"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="incident", description="Incident investigation notebooks")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="generate the demo incident and investigate it end to end")
    d.add_argument("--size", type=int, default=200_000, help="log lines (default 200000)")
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--data", help="where to write the telemetry (default runs/.data/...)")
    d.add_argument("--generate-only", action="store_true", help="write telemetry, do not run")
    d.add_argument("--end-now", action="store_true", help="place the data so it ends now")
    d.add_argument("--id", default="demo-payments", help="run id (default demo-payments)")
    r = sub.add_parser("run", help="investigate an alert or a service/time window")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--alert", help="Alertmanager webhook v4 JSON file")
    src.add_argument("--service", help="service to investigate (with --start and --end)")
    r.add_argument("--start", help="window start, ISO-8601 (with --alert: default 2 h before "
                   "the alert)")
    r.add_argument("--end", help="window end, ISO-8601 or now (with --alert: default 75 min "
                   "after the alert, capped at now)")
    r.add_argument("--data", help="folder with incident.yaml (files backend)")
    r.add_argument("--config", help="config YAML (backends, topology, severity policy)")
    r.add_argument("--id", help="incident id (default derived from the alert or flags)")
    r.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    s = sub.add_parser("status", help="a run's progress and its latest status update")
    s.add_argument("run", help="incident id or run folder")
    s.add_argument("--json", action="store_true")
    s.add_argument("--update", action="store_true",
                   help="render a new status update from current numbers, append to timeline")
    rp = sub.add_parser("report", help="re-render report.md (or `report lint RUN` to check it)")
    rp.add_argument("items", nargs="+", metavar="[lint] RUN", help="incident id or run folder")
    t = sub.add_parser("templates", help="mine log templates of a log file")
    t.add_argument("logfile")
    t.add_argument("--format", default=None,
                   help="loghub header format, e.g. '<Date> <Content>' (default: detect it)")
    t.add_argument("--out", required=True, help="output CSV")
    d.set_defaults(func=cmd_demo)
    r.set_defaults(func=cmd_run)
    s.set_defaults(func=cmd_status)
    rp.set_defaults(func=cmd_report)
    t.set_defaults(func=cmd_templates)
    for name in PLUGINS:  # each plugin module adds its own sub-commands via register()
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return p




def _config(args: argparse.Namespace) -> dict:
    if args.config or args.data:
        return load_config(args.config, args.data)
    default = demo_data_dir()
    if (default / "incident.yaml").is_file():
        return load_config(data_dir=default)
    return load_config()


def cmd_demo(args: argparse.Namespace) -> int:
    if args.size < 1000:
        raise InputError("--size must be at least 1000 log lines")
    data = Path(args.data) if args.data else demo_data_dir(args.seed, args.size)
    t0 = time.monotonic()
    if args.end_now or not (data / "incident.yaml").is_file():
        generate_demo(data, DemoSpec(seed=args.seed, size=args.size), end_now=args.end_now)
    gen_s = time.monotonic() - t0
    print(f"telemetry: {data} ({gen_s:.1f} s)", file=sys.stderr)
    if args.generate_only:
        print(data)
        return 0
    payload = json.loads((data / "alert.json").read_text("utf-8"))
    inc = incident_from_alert(payload, load_config(data_dir=data), incident_id=args.id)
    path = create_run(inc, replace=True)
    return _execute(path, 600)


def _execute(path: Path, timeout: int) -> int:
    t0 = time.monotonic()
    status = execute(path, cell_timeout=timeout)
    for name, st in status["stages"].items():
        extra = f" ({st.get('error')})" if st.get("error") else ""
        print(f"  {name:<12} {st['state']:<8} {st.get('seconds', 0):>6.1f} s{extra}",
              file=sys.stderr)
    print(f"run {status['state']} in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    if status.get("report"):
        print(path / status["report"])
    return 0 if status["state"] == "ok" else 1


def cmd_run(args: argparse.Namespace) -> int:
    if args.alert:
        payload = load_alert_file(args.alert)
        inc = incident_from_alert(payload, _config(args), incident_id=args.id,
                                  start=args.start, end=args.end)
    else:
        if not args.start or not args.end:
            raise InputError("--service needs --start and --end (ISO-8601 times)")
        inc = incident_from_cli(args.service, args.start, args.end, _config(args), args.id)
    path = create_run(inc)
    return _execute(path, args.timeout)


def cmd_status(args: argparse.Namespace) -> int:
    if args.update:
        from ..stages.status import append_status_update

        print(append_status_update(resolve_run(args.run)))
        return 0
    run = Run(resolve_run(args.run))
    st = run.status()
    tri = run.triage()
    upd = tri.status_update.text if tri and tri.status_update else None
    if args.json:
        print(json.dumps({"status": st, "status_update": upd}, indent=2))
        return 0
    print(f"{run.incident.id}: {st.get('state', 'not run by the runner')}")
    for name, s in (st.get("stages") or {}).items():
        err = f"  {s['error']}" if s.get("error") else ""
        print(f"  {name:<12} {s.get('state', '?'):<8}{err}")
    for n in st.get("notifications") or []:  # chat notifiers (pipeline/notify.py)
        err = f"  {n['error']}" if n.get("error") else ""
        print(f"  chat {n.get('notifier')}: {n.get('event')} {n.get('state')}{err}")
    if upd:
        print()
        print(upd)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    items = list(args.items)
    if items[0] == "lint" and len(items) == 2:
        from ..report.lint import lint_run

        problems = lint_run(resolve_run(items[1]))
        for p in problems:
            print(p)
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1 if problems else 0
    if len(items) != 1:
        raise InputError("usage: incident report RUN, or incident report lint RUN")
    print(render_report(Run(resolve_run(items[0]))))
    return 0




def main(argv: list[str] | None = None) -> int:
    """Entry point of the `incident` console script."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"incident: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except IncidentError as exc:
        print(f"incident: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]


if __name__ == "__main__":
    sys.exit(main())
