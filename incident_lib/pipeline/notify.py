"""Status updates to chat: Slack-compatible incoming webhooks (Slack, Mattermost), Microsoft
Teams (Adaptive Card) and a generic JSON webhook, configured under `notify:` in incident.yaml.

Three events: `triage` (the first status update, as soon as the triage notebook has written
its findings), `root_cause` (when the 5 Whys state a root cause as fact) and `resolved`.
Each message carries status, severity, impact, suspect with confidence, action and links (the
served run, the evidence in Grafana / Prometheus / Kibana).

Webhook URLs are secrets: read from the environment variable the config names, at send time;
never written to runs/, logs or error texts (an error is the exception's type or the HTTP
status). Sending runs in a background thread (the notebooks go on), failures are retried with
exponential backoff (429 and 5xx, honouring Retry-After up to a cap; other 4xx are final), and
every outcome is recorded in status.json under `notifications`. A hand-written loop, not
tenacity/backoff: the policy is ten lines, and a library would still need the per-attempt
record and the Retry-After cap written around it.

Messages and their per-platform payloads (with the escaping rules) are in chat_messages.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ..core.storage import atomic_write_json
from ..runs.folder import Run
from .chat_messages import build_message, payload_for

__all__ = ["post", "Dispatcher", "notify_now", "record_status", "status_lock",
           "dispatcher_for", "on_findings", "notify_stage"]

MAX_ATTEMPTS = 4
BACKOFF_S = 1.0  # first retry after 1 s, then 2 s, 4 s
MAX_WAIT_S = 30.0  # cap on one wait (Retry-After included)
TIMEOUT_S = 10.0
DRAIN_S = 45.0  # what the runner waits at the end of a run for messages still being sent


# -- sending -------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "")
    return min(float(value), MAX_WAIT_S) if value.strip().isdigit() else None


def post(url: str, payload: dict[str, Any], *, client: httpx.Client | None = None,
         attempts: int = MAX_ATTEMPTS, backoff: float = BACKOFF_S,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """POST payload as JSON with retries on 429/5xx/transport errors; never raises.

    Returns {state: sent|failed, attempts, status_code, error}; `error` never holds the URL.
    """
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    result: dict[str, Any] = {"state": "failed", "attempts": 0, "status_code": None,
                              "error": None}
    try:
        for i in range(attempts):
            result["attempts"] = i + 1
            wait = min(backoff * 2 ** i, MAX_WAIT_S)
            try:
                resp = client.post(url, content=body,
                                   headers={"Content-Type": "application/json; charset=utf-8"})
            except httpx.HTTPError as exc:  # connect/read errors: retried
                result.update(error=f"{type(exc).__name__} (no answer)", status_code=None)
            else:
                result["status_code"] = resp.status_code
                if 200 <= resp.status_code < 300:
                    result.update(state="sent", error=None)
                    return result
                result["error"] = f"HTTP {resp.status_code}"
                if resp.status_code != 429 and resp.status_code < 500:
                    return result  # a 4xx other than 429 will not get better
                wait = _retry_after(resp) or wait
            if i + 1 < attempts:
                sleep(wait)
        return result
    finally:
        if own:
            client.close()


@contextlib.contextmanager
def status_lock(run_path: Path) -> Iterator[None]:
    """Exclusive lock for read-modify-write of status.json (runner and notifiers)."""
    with open(Path(run_path) / ".status.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def record_status(run_path: Path, entry: dict[str, Any]) -> None:
    """Append a notification outcome to status.json (`notifications`, the last 100 kept)."""
    path = Path(run_path) / "status.json"
    with status_lock(run_path):
        data = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        data["notifications"] = [*(data.get("notifications") or []), entry][-100:]
        atomic_write_json(path, data)


def _already_sent(run_path: Path, event: str, name: str) -> bool:
    path = Path(run_path) / "status.json"
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return any(n.get("event") == event and n.get("notifier") == name and n.get("state") == "sent"
               for n in data.get("notifications") or [])


def notify_now(run_path: Path, event: str, *, client: httpx.Client | None = None,
               sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """Send `event` to every configured notifier that wants it (once per run); record each
    outcome in status.json and return the records. Never raises."""
    run_path = Path(run_path)
    records = []
    try:
        run = Run(run_path)
        specs = [s for s in run.incident.topology.get("notify") or [] if event in s["events"]]
        msg = build_message(run, event) if specs else None
    except Exception as exc:  # noqa: BLE001 - a notifier never fails the investigation
        entry = {"event": event, "notifier": "*", "state": "failed", "time": _now(),
                 "error": f"message not built: {type(exc).__name__}"}
        _safe_record(run_path, entry)
        return [entry]
    for spec in specs:
        if _already_sent(run_path, event, spec["name"]):
            continue
        entry: dict[str, Any] = {"event": event, "notifier": spec["name"], "kind": spec["kind"],
                                 "time": _now()}
        url = os.environ.get(spec["url_env"], "").strip()
        if not url:
            entry.update(state="skipped", error=f"environment variable {spec['url_env']} is "
                                                "empty: set the webhook URL there")
        elif not url.lower().startswith(("https://", "http://")):
            entry.update(state="failed", attempts=0,
                         error=f"{spec['url_env']} does not hold an http(s) URL")
        else:
            try:
                assert msg is not None
                entry.update(post(url, payload_for(spec, msg), client=client, sleep=sleep))
            except Exception as exc:  # noqa: BLE001 - e.g. a malformed URL in the variable
                entry.update(state="failed", error=f"{type(exc).__name__} (check "
                                                   f"{spec['url_env']})")
        entry["sent_at"] = _now()
        _safe_record(run_path, entry)
        records.append(entry)
    return records


def _safe_record(run_path: Path, entry: dict[str, Any]) -> None:
    with contextlib.suppress(OSError, ValueError):
        record_status(run_path, entry)


class Dispatcher:
    """Sends events in a background thread so the investigation never waits on a chat."""

    def __init__(self, run_path: Path, **kw: Any) -> None:
        self.run_path = Path(run_path)
        self._kw = kw
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pending: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="incident-notify", daemon=True)
        self._thread.start()

    def submit(self, event: str) -> None:
        """Queue an event (returns at once)."""
        self._pending.append(event)
        self._queue.put(event)

    def _loop(self) -> None:
        while (event := self._queue.get()) is not None:
            notify_now(self.run_path, event, **self._kw)
            self._pending.remove(event)

    def close(self, timeout: float = DRAIN_S) -> None:
        """Let queued messages go out for up to `timeout` seconds, then return; events still
        unsent then are recorded as failed (the process may end before they are)."""
        self._queue.put(None)
        self._thread.join(timeout)
        for event in list(self._pending):
            _safe_record(self.run_path, {"event": event, "notifier": "*", "state": "failed",
                                         "time": _now(), "error": f"still being sent after "
                                         f"{timeout:g} s when the run ended (chat too slow)"})


# -- runner hooks ---------------------------------------------------------------------------


def dispatcher_for(path: Path) -> Dispatcher | None:
    """A chat notifier for the run when incident.yaml configured `notify:`."""
    try:
        topo = json.loads((path / "incident.json").read_text("utf-8")).get("topology") or {}
    except (OSError, ValueError):
        return None
    return Dispatcher(path) if topo.get("notify") else None


def on_findings(path: Path, stage: str, token: str,
                ready: Callable[[], None]) -> Callable[[], bool]:
    """Call `ready` once when the stage's findings of this execution (its run token) appear,
    polling every 0.2 s in a thread; returns stop(), which says whether `ready` was called."""
    done, fired = threading.Event(), threading.Event()

    def loop() -> None:
        f = path / "findings" / f"{stage}.json"
        while not done.wait(0.2):
            try:
                if json.loads(f.read_text("utf-8")).get("run_token") != token:
                    continue
            except (OSError, ValueError):
                continue
            fired.set()
            ready()
            return

    t = threading.Thread(target=loop, name=f"findings-{stage}", daemon=True)
    t.start()

    def stop() -> bool:
        done.set()
        t.join(2)
        return fired.is_set()

    return stop


def notify_stage(chat: Dispatcher, path: Path, stage: str) -> None:
    """The first status update when triage ends; an update when the root cause is stated."""
    if stage == "triage":
        chat.submit("triage")
    elif stage == "five_whys":
        try:
            why = json.loads((path / "findings" / "five_whys.json").read_text("utf-8"))
        except (OSError, ValueError):
            return
        if ((why.get("data") or {}).get("root_cause") or {}).get("stated"):
            chat.submit("root_cause")
