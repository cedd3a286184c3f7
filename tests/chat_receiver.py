"""A loopback HTTP receiver standing in for a chat webhook (Slack, Mattermost, Teams, generic):
it records every POST (path, headers, JSON body, time) and answers with scripted statuses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    url: str
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # then 200
    posts: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """Block until `count` POSTs arrived (or the timeout); return what arrived."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.posts) >= count, timeout)
            return list(self.posts)


@contextmanager
def chat_receiver(answers: list[tuple[int, dict[str, str]]] | None = None,
                  ) -> Iterator[Receiver]:
    """Serve on 127.0.0.1:<free port>; the webhook path holds a fake secret."""
    rec: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with rec.arrived:
                status, headers = rec.answers.pop(0) if rec.answers else (200, {})
                rec.posts.append({"path": self.path, "headers": dict(self.headers),
                                  "json": json.loads(body), "time": time.time(),
                                  "answered": status})
                rec.arrived.notify_all()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec = Receiver(f"http://127.0.0.1:{srv.server_address[1]}/hooks/T0SECRET/B0SECRET/"
                   "xoxsecretpath", list(answers or []))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield rec
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)
