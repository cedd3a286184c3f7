"""Workers of `incident serve`: a bounded pool of threads, each running one investigation in a
child process (`python -m incident_lib.service.worker work ...`) that dies with the server
(PR_SET_PDEATHSIG). The child takes one job from the durable queue, runs the notebooks and
records the outcome; errors become one line and exit code 2.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["WorkerPool", "work", "DEFAULT_WORKERS"]

DEFAULT_WORKERS = 2
_PR_SET_PDEATHSIG = 1


WORKER_NICE = 5


class WorkerPool:
    """N threads taking jobs from the queue; each job runs in a child process."""

    def __init__(self, queue: Any, config: Path, runs_dir: Path, workers: int = DEFAULT_WORKERS,
                 cell_timeout: int = 600, token_env: str = "INCIDENT_WEBHOOK_TOKEN",
                 worker_module: str = "incident_lib.service.worker") -> None:
        self.queue = queue
        self.worker_module = worker_module  # the child's module (tests plug a cheap one in)
        # called as on_finish(job, seconds, state) after each job a worker completed
        self.on_finish: Callable[[Any, float, str], None] | None = None
        self.config = Path(config)
        self.runs_dir = Path(runs_dir)
        self.size = max(1, int(workers))
        self.cell_timeout = cell_timeout
        self.token_env = token_env
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._children: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._warm = 0

    def start(self) -> None:
        """Queue again what a dead server left running, then start the threads."""
        self.queue.requeue_interrupted()
        for i in range(self.size):
            t = threading.Thread(target=self._loop, args=(i,), name=f"incident-worker-{i}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def notify(self) -> None:
        """Wake an idle worker (a job was queued)."""
        self._wake.set()

    def warm(self) -> int:
        """Number of preloaded worker processes waiting for a job."""
        with self._lock:
            return self._warm

    def busy(self) -> int:
        """Number of child processes running a job."""
        with self._lock:
            return len(self._children) - self._warm

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads; running children are terminated and re-run on the next start."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            children = list(self._children.values())
        for p in children:
            if p.poll() is None:
                p.terminate()
        for t in self._threads:
            t.join(timeout)

    def _loop(self, index: int) -> None:
        spare: subprocess.Popen | None = None  # a warm child: imports done, waits for a job
        while not self._stop.is_set():
            if spare is not None and spare.poll() is not None:  # a spare died idle
                with self._lock:
                    self._children.pop(spare.pid, None)
                    self._warm = max(0, self._warm - 1)
                spare = None
            if spare is None:
                spare = self._spawn(index)
            job = self.queue.claim() if not self._stop.is_set() else None
            if job is not None and self._stop.is_set():  # stopping: never start a new job
                self._give_back(job)
                break
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._run(job, spare, index)
            spare = None

    def _log(self, index: int) -> Path:
        name = f"worker-{index}.log"
        owner = getattr(self.queue, "owner", None)
        if owner:  # a shared runs folder: one log per replica, never another replica's lines
            name = f"{re.sub(r'[^A-Za-z0-9.-]+', '-', owner)}-{name}"
        log = self.runs_dir / ".serve-logs" / name
        log.parent.mkdir(parents=True, exist_ok=True)
        return log

    def _spawn(self, index: int) -> subprocess.Popen | None:
        """Start a worker child that preloads papermill and waits for `<key> <mode>`."""
        cmd = [sys.executable, "-m", self.worker_module, "work", *self.queue.child_args(),
               "--config", str(self.config),
               "--timeout", str(self.cell_timeout), "--parent-pid", str(os.getpid())]
        env = {**os.environ, "INCIDENT_RUNS_DIR": str(self.runs_dir)}
        env.pop(self.token_env, None)  # the child does not need the webhook secret
        r, w = os.pipe()
        try:
            with open(self._log(index), "ab") as fh:
                proc = subprocess.Popen([*cmd, "--ready-fd", str(w)], stdin=subprocess.PIPE,
                                        stdout=fh, stderr=subprocess.STDOUT, env=env,
                                        pass_fds=(w,))
        except OSError:
            os.close(r)
            return None
        finally:
            os.close(w)
        with self._lock:
            self._children[proc.pid] = proc
        try:
            ready = os.read(r, 1)  # b"" if the child died while preloading
        finally:
            os.close(r)
        if ready:
            with self._lock:
                self._warm += 1
        return proc

    def _run(self, job: Any, proc: subprocess.Popen | None, index: int) -> None:
        for _ in range(2):  # a spare that died meanwhile is replaced once
            if proc is not None and proc.poll() is None and proc.stdin is not None:
                try:
                    with self._lock:
                        self._warm = max(0, self._warm - 1)
                    proc.stdin.write(f"{job.key} {job.mode}\n".encode())
                    proc.stdin.close()
                    break
                except OSError:
                    pass
            if self._stop.is_set():
                self._give_back(job)
                return
            proc = self._spawn(index)
        else:
            self.queue.finish(job.key, False, job.want, "worker process could not start")
            return
        self.queue.set_pid(job.key, proc.pid)
        t0 = time.monotonic()
        rc = self._wait_renewing(job, proc)
        with self._lock:
            self._children.pop(proc.pid, None)
        if rc is None:
            return  # the lease was lost: another replica runs the job
        if self._stop.is_set() and rc != 0:  # stopped by the shutdown (a finished job counts)
            self._give_back(job)
            return
        error = None if rc == 0 else f"worker exited with code {rc}: {_last_line(self._log(index))}"
        done = self.queue.finish(job.key, rc == 0, job.want, error,
                                 completed_run=(rc == 0 and job.mode == "run"))
        if self.on_finish is not None:
            self.on_finish(done, time.monotonic() - t0, "done" if rc == 0 else "failed")

    def _give_back(self, job: Any) -> None:
        """A job this pool stopped: a shared queue lets another replica take it now; SQLite
        leaves it `running` and the next start queues it again."""
        release = getattr(self.queue, "release", None)
        if release is not None:
            release(job.key)

    def _wait_renewing(self, job: Any, proc: subprocess.Popen) -> int | None:
        """Wait for the child, renewing the job's lease (shared queues); None when the lease
        was lost (another replica may run the job now): the child is killed first."""
        every = self.queue.renew_every
        if every is None:
            return proc.wait()
        last_ok = time.monotonic()
        while True:
            try:
                return proc.wait(timeout=every)
            except subprocess.TimeoutExpired:
                pass
            try:
                if self.queue.renew(job.key):
                    last_ok = time.monotonic()
                    continue
                lost = True  # the lease is someone else's now
            except Exception:  # noqa: BLE001 - database unreachable: keep the job until the
                lost = time.monotonic() - last_ok > 2.4 * every  # lease could have run out
            if lost:
                proc.kill()
                proc.wait()
                print(f"incident serve: lost the lease of job {job.key}: its worker was "
                      "stopped; another replica runs it", file=sys.stderr)
                return None


def _last_line(log: Path) -> str:
    """The last non-empty line a worker wrote (its one-line error), cut to 300 characters."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return f"see {log.name}"
    return lines[-1][:300] if lines else f"see {log.name}"


def _die_with_parent(parent: int | None) -> None:
    """Ask Linux to SIGKILL this process when the server that started it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:  # it died before prctl took effect
        os._exit(3)


def _set_resolved(run_dir: Path, resolved_at: str | None) -> bool:
    """Write resolved_at into incident.json (atomically); True when it changed."""
    from ..core.storage import atomic_write_json

    if not resolved_at:
        return False
    f = run_dir / "incident.json"
    data = json.loads(f.read_text("utf-8"))
    if data.get("resolved_at") == resolved_at:
        return False
    data["resolved_at"] = resolved_at
    atomic_write_json(f, data)
    return True


def _final_state(path: Path) -> str | None:
    """The state of a run the runner finished (status.json with a final state and an end)."""
    try:
        st = json.loads((path / "status.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    state = st.get("state") if isinstance(st, dict) else None
    return state if state in ("ok", "partial", "failed") and st.get("ended") else None


def work(db: Path | None, key: str, config: Path, mode: str, cell_timeout: int = 600,
         dsn_env: str | None = None) -> int:
    """Child entry: create (if needed) and execute the job's run, or re-render its report.

    The job is read from the SQLite file `db`, or from PostgreSQL (DSN in `$dsn_env`)."""
    from ..core.config import load_config
    from ..core.errors import RunLocked
    from ..pipeline.alerts import incident_from_alert
    from ..pipeline.runner import create_run, execute
    from ..runs.folder import Run, run_path
    from .jobqueue import JobQueue

    if dsn_env:
        from .pgqueue import PgJobQueue

        q: Any = PgJobQueue(os.environ.get(dsn_env, ""), dsn_env=dsn_env)
    else:
        q = JobQueue(db or "")
    job = q.get(key)
    q.close()
    if job is None:
        print(f"job {key} not found", file=sys.stderr)
        return 2
    path = run_path(job.incident_id)
    if mode == "render":
        from ..stages.postmortem import render_report

        _set_resolved(path, job.resolved_at)
        try:
            render_report(Run(path))
        finally:
            if job.resolved_at:  # the resolution to chat (once per run; bounded retries)
                from ..pipeline.notify import notify_now

                notify_now(path, "resolved")
        return 0
    if not (path / "incident.json").is_file():
        inc = incident_from_alert(job.payload, load_config(config), incident_id=job.incident_id)
        create_run(inc, replace=path.exists())
    _set_resolved(path, job.resolved_at)
    earlier = _final_state(path)
    if earlier is not None:  # an attempt finished it, then died before the queue heard of it
        print(f"run {job.incident_id}: {earlier} (finished by an earlier attempt; not run "
              "again)", file=sys.stderr)
        return 0 if earlier in ("ok", "partial") else 1
    for _ in range(120):
        try:
            status = execute(path, cell_timeout=cell_timeout)
            break
        except RunLocked:
            time.sleep(1.0)
    else:
        print(f"run {job.incident_id} stayed locked by another process", file=sys.stderr)
        return 1
    print(f"run {job.incident_id}: {status['state']}", file=sys.stderr)
    return 0 if status["state"] in ("ok", "partial") else 1


def _child_main(argv: list[str] | None = None) -> int:
    """`python -m incident_lib.service.worker work ...`: one job; errors as one line, exit 2."""
    from ..core.errors import IncidentError

    p = argparse.ArgumentParser(prog="python -m incident_lib.service.worker")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("work")
    w.add_argument("--db", help="the SQLite queue file")
    w.add_argument("--queue-dsn-env", help="environment variable with the PostgreSQL DSN")
    w.add_argument("--key", help="the job; without it, preload and read `<key> <mode>` "
                                 "from stdin (a warm spare)")
    w.add_argument("--parent-pid", type=int)
    w.add_argument("--ready-fd", type=int, help="written to once the preload is done")
    w.add_argument("--config", required=True)
    w.add_argument("--mode", choices=["run", "render"], default="run")
    w.add_argument("--timeout", type=int, default=600)
    args = p.parse_args(argv)
    _die_with_parent(args.parent_pid)
    try:  # investigations yield the CPU to the webhook receiver (202 within 1 s under load)
        os.nice(WORKER_NICE)
    except OSError:
        pass
    key, mode = args.key, args.mode
    if key is None:
        import papermill  # noqa: F401 - the slow imports happen before the job arrives

        from ..pipeline import alerts, runner  # noqa: F401
        from ..sources import files, prometheus  # noqa: F401

        if args.ready_fd is not None:
            os.write(args.ready_fd, b"1")
            os.close(args.ready_fd)
        line = sys.stdin.readline().split()
        if len(line) != 2 or line[1] not in ("run", "render"):
            return 0  # the server stopped (EOF) before giving a job
        key, mode = line
    print(f"job {key} ({mode})", flush=True)
    try:
        rc = work(Path(args.db) if args.db else None, key, Path(args.config), mode,
                  args.timeout, dsn_env=args.queue_dsn_env)
    except IncidentError as exc:
        print(f"error: {type(exc).__name__}: {' '.join(str(exc).split())[:250]}", flush=True)
        rc = 2
    # done: a shutdown's SIGTERM must not turn a finished job into an interrupted one while
    # the interpreter exits (that takes a while); the exit code is the outcome
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    return rc


if __name__ == "__main__":
    sys.exit(_child_main())
