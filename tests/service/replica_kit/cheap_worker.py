"""A cheap investigation for the kill test, speaking the worker-child protocol.

What it does for one job, like service/worker.py but without notebooks: dies with its replica
(PR_SET_PDEATHSIG), preloads, signals ready, reads `<key> <mode>` from stdin, reads the job
from PostgreSQL, appends `start <pid> <ppid> <time>` to runs/<id>/claims.log, holds the job
while the file $CHEAP_GATE exists (the test keeps every worker mid-run until all alerts are
sent, so the kill lands mid-run by construction) and then CHEAP_HOLD seconds (default 0.1,
the stand-in for investigation time; a group labelled hold_seconds holds that long), writes
runs/<id>/report.md atomically (temp + rename) naming the group and this process, then
appends `end <pid> <ppid> <time>` (`stop` when its replica's shutdown terminated it). Like
the real worker, a job whose report an earlier attempt already wrote is not run again
(`skip`), and SIGTERM is blocked while the report is written. It
imports psycopg only (not incident_lib, whose import alone costs ~2 s of CPU), so 200 jobs
fit in the CI budget.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path


def _log(run: Path, what: str) -> None:
    with open(run / "claims.log", "a") as fh:  # O_APPEND: one line per write, never torn
        fh.write(f"{what} {os.getpid()} {os.getppid()} {time.time():.6f}\n")


def main() -> int:
    """The child entry (`python -m ... work ...`)."""
    p = argparse.ArgumentParser()
    p.add_argument("cmd")
    p.add_argument("--queue-dsn-env", required=True)
    p.add_argument("--config")
    p.add_argument("--timeout")
    p.add_argument("--parent-pid", type=int)
    p.add_argument("--ready-fd", type=int)
    args = p.parse_args()
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if args.parent_pid is not None and os.getppid() != args.parent_pid:
        return 3
    import psycopg

    if args.ready_fd is not None:
        os.write(args.ready_fd, b"1")
        os.close(args.ready_fd)
    line = sys.stdin.readline().split()
    if len(line) != 2:
        return 0
    key, mode = line
    with psycopg.connect(os.environ[args.queue_dsn_env]) as conn:
        row = conn.execute("SELECT incident_id, payload FROM incident_jobs WHERE key = %s",
                           (key,)).fetchone()
    incident_id, payload = row
    run = Path(os.environ["INCIDENT_RUNS_DIR"]) / incident_id
    run.mkdir(parents=True, exist_ok=True)
    if (run / "report.md").is_file():  # as work(): an earlier attempt finished it
        _log(run, "skip")
        return 0
    _log(run, "start")

    def stopped(*_: object) -> None:  # the replica shuts down: say when this worker ended
        _log(run, "stop")
        os._exit(143)

    signal.signal(signal.SIGTERM, stopped)
    gate = os.environ.get("CHEAP_GATE")
    while gate and os.path.exists(gate):
        time.sleep(0.05)
    labels = payload.get("commonLabels") or {}
    time.sleep(float(labels.get("hold_seconds") or os.environ.get("CHEAP_HOLD", "0.1")))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # as worker._child_main
    tmp = run / f".report.md.{os.getpid()}"
    tmp.write_text(f"# {incident_id}\n\ngroup: {json.dumps(payload['groupKey'])}\n"
                   f"alerts: {len(payload['alerts'])}\nmode: {mode}\npid: {os.getpid()}\n")
    os.rename(tmp, run / "report.md")
    _log(run, "end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
