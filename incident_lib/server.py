"""`incident serve`: Alertmanager webhook receiver, durable queue, bounded worker pool.

The HTTP side (Starlette under uvicorn) only authenticates, validates and enqueues, then
answers 202. Worker threads take jobs from the SQLite queue and run each investigation in a
child process (`python -m incident_lib.server work ...`) that dies with the server
(PR_SET_PDEATHSIG); on restart, jobs left `running` are queued again and re-executed once.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["register", "create_app", "WorkerPool", "incident_id_for", "queue_path",
           "DEFAULT_MAX_BODY", "DEFAULT_WORKERS"]

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB; Alertmanager payloads are a few KiB
DEFAULT_WORKERS = 2
QUEUE_FILE = ".incident-queue.sqlite3"
_PR_SET_PDEATHSIG = 1
WORKER_NICE = 5


def queue_path(runs_dir: Path) -> Path:
    """Where the durable queue lives (next to the run folders)."""
    return Path(runs_dir) / QUEUE_FILE


def incident_id_for(payload: dict[str, Any], key: str) -> str:
    """A safe incident id from untrusted labels: <alertname>-<service>-<start>-<key>."""
    from .model import parse_time
    from .storage import slug, validate_incident_id

    alerts = payload["alerts"]
    labels = {**alerts[0]["labels"], **payload["commonLabels"]}
    service = labels.get("service") or labels.get("job") or labels.get("app")
    if not service:
        raise InputError("alert has no 'service' (or job/app) label: add one to the alerting "
                         "rule so the investigation knows where to look")
    starts = min(parse_time(a["startsAt"], "startsAt") for a in alerts)
    name = slug(labels.get("alertname", "alert"), 30)
    return validate_incident_id(f"{name}-{slug(service, 30)}-{starts:%Y%m%dt%H%M}-{key[:6]}")


def _resolved_at(payload: dict[str, Any]) -> str | None:
    """The resolve time of a `resolved` notification (latest endsAt), else None."""
    from .model import iso, parse_time

    if payload.get("status") != "resolved":
        return None
    ends = []
    for a in payload["alerts"]:
        try:
            ends.append(parse_time(a.get("endsAt", ""), "endsAt"))
        except InputError:
            continue
    return iso(max(ends)) if ends else iso(time.time())


# -- worker pool --------------------------------------------------------------------------


class WorkerPool:
    """N threads taking jobs from the queue; each job runs in a child process."""

    def __init__(self, queue: Any, config: Path, runs_dir: Path, workers: int = DEFAULT_WORKERS,
                 cell_timeout: int = 600, token_env: str = "INCIDENT_WEBHOOK_TOKEN") -> None:
        self.queue = queue
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
            job = self.queue.claim()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._run(job, spare, index)
            spare = None

    def _log(self, index: int) -> Path:
        log = self.runs_dir / ".serve-logs" / f"worker-{index}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        return log

    def _spawn(self, index: int) -> subprocess.Popen | None:
        """Start a worker child that preloads papermill and waits for `<key> <mode>`."""
        cmd = [sys.executable, "-m", "incident_lib.server", "work", "--db",
               str(queue_path(self.runs_dir)), "--config", str(self.config),
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
            proc = self._spawn(index)
        else:
            self.queue.finish(job.key, False, job.want, "worker process could not start")
            return
        self.queue.set_pid(job.key, proc.pid)
        rc = proc.wait()
        with self._lock:
            self._children.pop(proc.pid, None)
        if self._stop.is_set():
            return  # left `running`: the next start queues it again
        error = None if rc == 0 else f"worker exited with code {rc}: {_last_line(self._log(index))}"
        self.queue.finish(job.key, rc == 0, job.want, error,
                          completed_run=(rc == 0 and job.mode == "run"))


def _last_line(log: Path) -> str:
    """The last non-empty line a worker wrote (its one-line error), cut to 300 characters."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return f"see {log.name}"
    return lines[-1][:300] if lines else f"see {log.name}"


# -- HTTP app -----------------------------------------------------------------------------


def create_app(config: str | Path, runs_dir: str | Path, token: str, *,
               workers: int = DEFAULT_WORKERS, max_body: int = DEFAULT_MAX_BODY,
               cell_timeout: int = 600, start_workers: bool = True,
               token_env: str = "INCIDENT_WEBHOOK_TOKEN") -> Any:
    """The Starlette app: POST /webhook, GET /healthz, GET /incidents/{id}."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from .alerts import dedupe_key, validate_payload
    from .queue import JobQueue

    if not token:
        raise InputError("the webhook token is empty: set INCIDENT_WEBHOOK_TOKEN (or the "
                         "variable named by --token-env)")
    runs = Path(runs_dir).resolve()
    runs.mkdir(parents=True, exist_ok=True)
    queue = JobQueue(queue_path(runs))
    pool = WorkerPool(queue, Path(config).resolve(), runs, workers, cell_timeout, token_env)
    expected = f"Bearer {token}".encode()

    def _authorized(request: Request) -> bool:
        got = request.headers.get("authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(got, expected)

    def _error(code: int, msg: str) -> JSONResponse:
        return JSONResponse({"error": msg}, status_code=code)

    async def _read_body(request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def webhook(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await _read_body(request)
        except ClientDisconnect:
            return _error(400, "the client disconnected before sending the whole body")
        if body is None:
            return _error(413, f"body larger than {max_body} bytes")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return _error(400, "body is not valid JSON (Alertmanager webhook v4 expected)")
        try:
            payload = validate_payload(payload)
            key = dedupe_key(payload)
            incident_id = incident_id_for(payload, key)
            resolved = _resolved_at(payload)
        except InputError as exc:
            return _error(400, " ".join(str(exc).split())[:300])
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            return _error(400, f"payload does not match Alertmanager webhook v4 "
                               f"({type(exc).__name__})")
        try:
            job, created = await run_in_threadpool(queue.submit, key, incident_id, payload,
                                                   resolved)
        except Exception:  # noqa: BLE001 - a storage fault is transient: Alertmanager retries
            return _error(503, "the queue is unavailable, retry later")
        pool.notify()
        return JSONResponse({"incident_id": job.incident_id, "state": job.state,
                             "duplicate": not created, "notifications": job.notifications,
                             "status_url": f"/incidents/{job.incident_id}"}, status_code=202)

    async def health(request: Request) -> JSONResponse:
        try:
            counts = await run_in_threadpool(queue.counts)
        except Exception:  # noqa: BLE001 - health must answer
            return _error(503, "queue unavailable")
        return JSONResponse({"ok": True, "workers": pool.size, "busy": pool.busy(),
                             "warm": pool.warm(), "jobs": counts})

    async def incident(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        job = await run_in_threadpool(queue.by_incident, request.path_params["incident_id"])
        if job is None:
            return _error(404, "no such incident")
        return JSONResponse(job.public())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if start_workers:
            pool.start()
        try:
            yield
        finally:
            pool.stop()
            queue.close()

    app = Starlette(
        routes=[Route("/webhook", webhook, methods=["POST"]),
                Route("/api/v2/alerts/webhook", webhook, methods=["POST"]),
                Route("/healthz", health, methods=["GET"]),
                Route("/incidents/{incident_id}", incident, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.pool = pool
    return app


# -- CLI ----------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add `incident serve` to the CLI."""
    s = sub.add_parser("serve", help="receive Alertmanager webhooks and investigate in the "
                                     "background")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=9095)
    s.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                   help="investigations running at once (default 2)")
    s.add_argument("--config", help="config YAML (backends, topology, severity policy)")
    s.add_argument("--data", help="folder with incident.yaml (files backend)")
    s.add_argument("--token-env", default="INCIDENT_WEBHOOK_TOKEN",
                   help="environment variable holding the webhook bearer token")
    s.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="bytes (default 1 MiB)")
    s.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    s.set_defaults(func=cmd_serve)


def _config_path(args: argparse.Namespace) -> Path:
    from .config import load_config
    from .runner import demo_data_dir

    if args.config:
        path = Path(args.config)
    elif args.data:
        path = Path(args.data) / "incident.yaml"
    elif os.environ.get("INCIDENT_CONFIG"):
        path = Path(os.environ["INCIDENT_CONFIG"])
    else:
        path = demo_data_dir() / "incident.yaml"
    load_config(path)  # fail at startup, not in the first job
    return path.resolve()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the webhook receiver under uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    from .storage import runs_root

    token = os.environ.get(args.token_env, "")
    if not token:
        raise InputError(f"environment variable {args.token_env} is empty: set the webhook "
                         "bearer token there (the same as Alertmanager's http_config)")
    if args.workers < 1 or args.max_body < 1:
        raise InputError("--workers and --max-body must be positive")
    app = create_app(_config_path(args), runs_root(), token, workers=args.workers,
                     max_body=args.max_body, cell_timeout=args.timeout,
                     token_env=args.token_env)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5)
    return 0


# -- child process: one investigation -----------------------------------------------------


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
    from .storage import atomic_write_json

    if not resolved_at:
        return False
    f = run_dir / "incident.json"
    data = json.loads(f.read_text("utf-8"))
    if data.get("resolved_at") == resolved_at:
        return False
    data["resolved_at"] = resolved_at
    atomic_write_json(f, data)
    return True


def work(db: Path, key: str, config: Path, mode: str, cell_timeout: int = 600) -> int:
    """Child entry: create (if needed) and execute the job's run, or re-render its report."""
    from .alerts import incident_from_alert
    from .config import load_config
    from .queue import JobQueue
    from .run import Run
    from .runner import RunLocked, create_run, execute, run_path

    q = JobQueue(db)
    job = q.get(key)
    q.close()
    if job is None:
        print(f"job {key} not found", file=sys.stderr)
        return 2
    path = run_path(job.incident_id)
    if mode == "render":
        from .stages.postmortem import render_report

        _set_resolved(path, job.resolved_at)
        render_report(Run(path))
        return 0
    if not (path / "incident.json").is_file():
        inc = incident_from_alert(job.payload, load_config(config), incident_id=job.incident_id)
        create_run(inc, replace=path.exists())
    _set_resolved(path, job.resolved_at)
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
    """`python -m incident_lib.server work ...`: one job; errors as one line, exit 2."""
    from .errors import IncidentError

    p = argparse.ArgumentParser(prog="python -m incident_lib.server")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("work")
    w.add_argument("--db", required=True)
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

        from . import alerts, runner  # noqa: F401
        from .sources import files, prometheus  # noqa: F401

        if args.ready_fd is not None:
            os.write(args.ready_fd, b"1")
            os.close(args.ready_fd)
        line = sys.stdin.readline().split()
        if len(line) != 2 or line[1] not in ("run", "render"):
            return 0  # the server stopped (EOF) before giving a job
        key, mode = line
    print(f"job {key} ({mode})", flush=True)
    try:
        return work(Path(args.db), key, Path(args.config), mode, args.timeout)
    except IncidentError as exc:
        print(f"error: {type(exc).__name__}: {' '.join(str(exc).split())[:250]}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(_child_main())
