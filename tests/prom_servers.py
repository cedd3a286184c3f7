"""Start Debian's prometheus / prometheus-alertmanager (and `incident serve`) on free ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

__all__ = ["free_port", "require_binary", "backfill", "Proc", "start_prometheus",
           "start_alertmanager", "start_server", "wait_http"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(name: str) -> str:
    """Path of a binary; missing -> fail when CI=true, else skip."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file()
                                  else None)
    if path:
        return path
    msg = f"{name} is not installed (apt-get install prometheus prometheus-alertmanager)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)
    raise AssertionError("unreachable")


def backfill(openmetrics: Path, tsdb: Path) -> Path:
    """`promtool tsdb create-blocks-from openmetrics FILE DIR` -> DIR."""
    promtool = require_binary("promtool")
    tsdb.mkdir(parents=True, exist_ok=True)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics),
                    str(tsdb)], check=True, capture_output=True, timeout=120)
    return tsdb


@dataclass
class Proc:
    """A started server: its process, base URL and log file."""

    proc: subprocess.Popen
    url: str
    log: Path
    extra: dict = field(default_factory=dict)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, n: int = 3000) -> str:
        """The end of the log (for assertion messages)."""
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    """Poll url until it answers 200; fail with the log if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url}: process exited {proc.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout} s:\n"
                         f"{log.read_text(errors='replace')[-3000:]}")


def _spawn(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    fh = open(log, "wb")  # noqa: SIM115 - closed when the process ends (child holds it)
    try:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    finally:
        fh.close()


def start_prometheus(tsdb: Path, workdir: Path, *, rules: str | None = None,
                     alertmanager: str | None = None, eval_interval: str = "1s",
                     port: int | None = None) -> Proc:
    """prometheus on 127.0.0.1:<free port> over a (backfilled) TSDB, optionally with rules."""
    binary = require_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = [f"global:\n  evaluation_interval: {eval_interval}\n  scrape_interval: 15s\n"]
    if rules:
        (workdir / "rules.yml").write_text(rules)
        cfg.append(f"rule_files: [{str(workdir / 'rules.yml')!r}]\n")
    if alertmanager:
        host = alertmanager.split("://", 1)[1].rstrip("/")
        cfg.append("alerting:\n  alertmanagers:\n    - static_configs:\n"
                   f"        - targets: [{host!r}]\n")
    (workdir / "prometheus.yml").write_text("".join(cfg))
    port = port or free_port()
    log = workdir / "prometheus.log"
    proc = _spawn([binary, f"--config.file={workdir / 'prometheus.yml'}",
                   f"--storage.tsdb.path={tsdb}", f"--web.listen-address=127.0.0.1:{port}",
                   "--storage.tsdb.retention.time=100y", "--web.enable-lifecycle",
                   # A fresh Prometheus evaluates its rules before it has discovered its
                   # Alertmanager: that first notification is dropped and, by default, sent
                   # again only after 1 min. A long-running server has no such gap.
                   "--rules.alert.resend-delay=2s"], log)
    return _ready(proc, port, log, timeout=60)


def _ready(proc: subprocess.Popen, port: int, log: Path, timeout: float) -> Proc:
    """Wait for /-/ready on 127.0.0.1:port; kill the process if it never gets there."""
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", proc, log, timeout=timeout)
    except BaseException:
        Proc(proc, url, log).stop(signal.SIGKILL)
        raise
    return Proc(proc, url, log)


def start_alertmanager(workdir: Path, webhook_url: str, token: str) -> Proc:
    """prometheus-alertmanager on 127.0.0.1:<free port>, one webhook receiver with a bearer."""
    binary = require_binary("prometheus-alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "token").write_text(token)
    (workdir / "alertmanager.yml").write_text(
        "route:\n  receiver: incident-lib\n  group_by: [alertname, service]\n"
        "  group_wait: 1s\n  group_interval: 5s\n  repeat_interval: 1h\n"
        "receivers:\n  - name: incident-lib\n    webhook_configs:\n"
        f"      - url: {webhook_url!r}\n        send_resolved: true\n"
        "        http_config:\n          authorization:\n"
        f"            type: Bearer\n            credentials_file: {str(workdir / 'token')!r}\n")
    port = free_port()
    log = workdir / "alertmanager.log"
    proc = _spawn([binary, f"--config.file={workdir / 'alertmanager.yml'}",
                   f"--storage.path={workdir / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="], log)
    return _ready(proc, port, log, timeout=30)


def start_server(workdir: Path, *, config: Path, runs: Path, token: str, port: int | None = None,
                 workers: int = 2, extra_env: dict | None = None) -> Proc:
    """`incident serve` in a child process on 127.0.0.1:<port>; ready when /healthz is 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {**os.environ, "INCIDENT_RUNS_DIR": str(runs), "INCIDENT_WEBHOOK_TOKEN": token,
           **(extra_env or {})}
    log = workdir / f"serve-{port}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "incident_lib.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--config", str(config)],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", proc, log, timeout=30)
        deadline = time.monotonic() + 60  # steady state: every worker preloaded and waiting,
        # or running a job it found queued at start (a restart re-queues interrupted runs)

        def settled() -> bool:
            h = httpx.get(f"{url}/healthz", timeout=5).json()
            return h.get("warm", workers) + h.get("jobs", {}).get("running", 0) >= workers

        while not settled():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"workers not ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
    except BaseException:
        Proc(proc, url, log).stop(signal.SIGKILL)
        raise
    return Proc(proc, url, log, {"port": port})
