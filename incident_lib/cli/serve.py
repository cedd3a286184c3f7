"""`incident serve`: the command that starts the webhook receiver (see service/)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..core.config import load_config
from ..core.errors import InputError
from ..core.storage import runs_root
from ..pipeline.runner import demo_data_dir
from ..service.app import (
    DEFAULT_MAX_BODY,
    DEFAULT_WORKERS,
    HEADER_TIMEOUT,
    clean_token,
    create_app,
    header_timeout_protocol,
)

__all__ = ["register", "cmd_serve"]
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
    s.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                   help="bytes (default 16 MiB, ~18,000 alerts; see max_alerts in README)")
    s.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    s.add_argument("--read-token-env", default="INCIDENT_READ_TOKEN",
                   help="environment variable holding the token to read runs at /runs/ "
                        "(not the webhook token); unset: /runs/ is not served")
    s.add_argument("--runs-behind-proxy", action="store_true",
                   help="serve /runs/ without a token: your reverse proxy authenticates")
    s.add_argument("--runs", help="runs root (default $INCIDENT_RUNS_DIR, else ./runs); with "
                                  "a PostgreSQL queue, a folder every replica mounts")
    s.set_defaults(func=cmd_serve)


def _config_path(args: argparse.Namespace) -> Path:
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


    token = clean_token(os.environ.get(args.token_env, ""), args.token_env)
    if not token:
        raise InputError(f"environment variable {args.token_env} is empty: set the webhook "
                         "bearer token there (the same as Alertmanager's http_config)")
    if args.workers < 1 or args.max_body < 1:
        raise InputError("--workers and --max-body must be positive")
    read = clean_token(os.environ.get(args.read_token_env, ""), args.read_token_env) or None
    os.environ.pop(args.read_token_env, None)  # workers and notebooks never see it
    runs = Path(args.runs).resolve() if args.runs else runs_root()
    app = create_app(_config_path(args), runs, token, workers=args.workers,
                     max_body=args.max_body, cell_timeout=args.timeout,
                     token_env=args.token_env, read_token=read,
                     runs_behind_proxy=args.runs_behind_proxy)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5, http=header_timeout_protocol(HEADER_TIMEOUT))
    return 0
