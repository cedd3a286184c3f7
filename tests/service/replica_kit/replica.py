"""One `incident serve` replica for tests, with a chosen worker-child module.

    python -m tests.service.replica_kit.replica --port P --config C --runs R --workers N \
        [--worker-module tests.service.replica_kit.cheap_worker]

The same app (`create_app`) under uvicorn with the same protocol as `incident serve`; only
the module each worker child runs can be swapped (the kill test runs a cheap investigation).
The token comes from INCIDENT_WEBHOOK_TOKEN, the queue from the config's `queue:` section.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from incident_lib.service.app import HEADER_TIMEOUT, create_app, header_timeout_protocol


def main() -> None:
    """Parse the flags and serve until SIGTERM/SIGINT."""
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-module", default="incident_lib.service.worker")
    args = p.parse_args()
    app = create_app(args.config, args.runs, os.environ["INCIDENT_WEBHOOK_TOKEN"],
                     workers=args.workers, worker_module=args.worker_module)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5, http=header_timeout_protocol(HEADER_TIMEOUT))


if __name__ == "__main__":
    main()
