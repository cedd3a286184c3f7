"""Create run folders and execute the four notebooks with papermill, keeping our own status."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.config import check_no_credentials, load_config
from ..core.errors import InputError, RunLocked
from ..core.model import Incident, iso
from ..core.resources import notebooks_dir
from ..core.storage import (
    atomic_write_json,
    atomic_write_text,
    runs_root,
    workspace,
)
from ..demo.generator import generate_demo
from ..report.export import export_markdown, export_run_html
from ..runs.folder import DEMO_RUN_ID, STAGES, Run, new_run_token, run_path
from ..stages.postmortem import render_report
from .alerts import incident_from_alert
from .notify import dispatcher_for, notify_stage, on_findings, status_lock

__all__ = ["NOTEBOOKS", "create_run", "execute", "create_demo_run", "notebook_path",
           "PARAMETER_NAMES"]

NOTEBOOKS = {
    "triage": "01_triage.ipynb",
    "correlation": "02_correlation.ipynb",
    "five_whys": "03_five_whys.ipynb",
    "postmortem": "04_postmortem.ipynb",
}
PARAMETER_NAMES = frozenset({"run_dir"})  # the only papermill parameter ever injected
DEFAULT_CELL_TIMEOUT = 600


def notebook_path(stage: str, folder: Path | None = None) -> Path:
    """The notebook of a stage: the bundled one, or from `folder` (a copy the caller owns)."""
    if stage not in NOTEBOOKS:
        raise InputError(f"stage {stage[:40]!r} is unknown: use one of {', '.join(STAGES)}")
    folder = Path(folder).resolve() if folder is not None else notebooks_dir()
    path = (folder / NOTEBOOKS[stage]).resolve()
    if path.parent != folder or not path.is_file():
        raise InputError(f"notebook {NOTEBOOKS[stage]} is missing from {folder}")
    return path




def create_run(incident: Incident, root: Path | None = None, replace: bool = False) -> Path:
    """Create runs/<id>/incident.json atomically (temp folder, then rename)."""
    check_no_credentials(incident.sources)  # never written, whoever built the Incident
    path = run_path(incident.id, root)
    if path.exists():
        if not replace:
            raise InputError(f"run {incident.id} already exists at {path}: pass a new --id, "
                             "or `incident report` to re-render it")
        with run_lock(path):
            shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{incident.id}.", dir=path.parent))
    try:
        atomic_write_json(tmp / "incident.json", incident.to_dict())
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Exclusive, non-blocking lock on a run: the same id never runs twice at once."""
    path.mkdir(parents=True, exist_ok=True)
    fh = open(path / ".lock", "a")  # noqa: SIM115 - "a": taking the lock changes no mtime
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(f"run {path.name} is already being executed by another process")\
                from None
        yield
    finally:
        fh.close()


def _now() -> str:
    return iso(datetime.now(UTC)) or ""


class _Status:
    def __init__(self, path: Path, stages: list[str]) -> None:
        self.path = path / "status.json"
        old = json.loads(self.path.read_text("utf-8")) if self.path.is_file() else {}
        self.data: dict[str, Any] = {
            "incident_id": path.name, "state": "running", "started": _now(), "ended": None,
            "stages": {s: old.get("stages", {}).get(s, {"state": "pending"}) for s in STAGES},
            "report": None,
        }
        for s in stages:
            self.data["stages"][s] = {"state": "pending"}
        self.write()

    def write(self) -> None:
        try:
            with status_lock(self.path.parent):  # notifiers append to it from a thread
                self._keep_notifications()
                atomic_write_json(self.path, self.data)
        except OSError as exc:
            if exc.errno not in _DISK_FULL or not self.path.is_file():
                raise
            # the disk is full: a temp file cannot be made, but the status must not stay
            # "running"; rewrite the small file in place (its blocks are already allocated)
            data = json.dumps(self.data, indent=2).encode()
            with open(self.path, "r+b") as fh:
                fh.write(data)
                fh.truncate()

    def _keep_notifications(self) -> None:
        try:
            sent = json.loads(self.path.read_text("utf-8")).get("notifications")
        except (OSError, ValueError):
            return
        if sent:
            self.data["notifications"] = sent

    def stage(self, name: str, **kw: Any) -> None:
        self.data["stages"][name].update(kw)
        self.write()


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _written(exc: OSError) -> str:
    where = f" writing {Path(exc.filename).name}" if exc.filename else ""
    return f"{exc.strerror}{where}"


def _disk_full(text: str) -> str:
    return f"the disk is full ({text[:120]}): free space, then run `incident` again on this run"


def _classify(exc: BaseException) -> tuple[str, str]:
    """Map a papermill/nbclient failure to (state, one-line reason)."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return "failed", _disk_full(_written(exc))
    if isinstance(exc, PapermillExecutionError) and "No space left on device" in str(exc.evalue):
        return "failed", _disk_full(f"cell {exc.exec_count}: {str(exc.evalue)[:100]}")
    if isinstance(exc, PapermillExecutionError):
        return "failed", f"cell {exc.exec_count} raised {exc.ename}: {str(exc.evalue)[:300]}"
    if isinstance(exc, CellTimeoutError | TimeoutError):
        return "timeout", f"a cell ran past its timeout: {str(exc).splitlines()[0][:200]}"
    if isinstance(exc, DeadKernelError):
        return "failed", "the kernel died (killed, out of memory or os._exit)"
    name = type(exc).__name__
    if "Kernel" in name or "kernel" in str(exc).lower():
        return "failed", f"the kernel could not start or run: {name}: {str(exc)[:200]}"
    return "failed", f"{name}: {str(exc)[:300]}"


def execute(
    path: Path,
    stages: list[str] | None = None,
    *,
    cell_timeout: int = DEFAULT_CELL_TIMEOUT,
    kernel_name: str = "python3",
    export: bool = True,
    notebooks: Path | None = None,
) -> dict[str, Any]:
    """Run the stages' notebooks in order into <run>/notebooks/, then export; return status.

    `notebooks` is a folder holding the four notebooks (default: the bundled ones), for teams
    that keep customised copies; only the four known file names are ever read from it.
    """
    import papermill as pm

    path = Path(path).resolve()
    stages = stages or list(STAGES)
    home = workspace()  # the kernel runs in the run folder; kb/ and runs/ stay the caller's
    with run_lock(path):
        status = _Status(path, stages)
        chat = dispatcher_for(path)
        out_dir = path / "notebooks"
        out_dir.mkdir(exist_ok=True)
        for stage in stages:
            token = new_run_token()
            status.stage(stage, state="running", started=_now(), ended=None, error=None)
            out_nb = out_dir / NOTEBOOKS[stage]
            params = {"run_dir": str(path)}
            assert set(params) <= PARAMETER_NAMES
            t0 = time.monotonic()
            sock_dir = tempfile.mkdtemp(prefix="incident-kernel-")
            # papermill writes its output in place (not atomically): write a temp name and
            # rename only a complete, readable notebook
            part_nb = out_dir / f".{Path(NOTEBOOKS[stage]).stem}.partial.ipynb"
            # the first chat update leaves as soon as triage's findings are written, not
            # after the kernel has shut down and the notebook is saved (~3 s later)
            early = (on_findings(path, stage, token, lambda: chat.submit("triage"))
                     if chat is not None and stage == "triage" else None)
            try:
                pm.execute_notebook(
                    str(notebook_path(stage, notebooks)), str(part_nb), parameters=params,
                    kernel_name=kernel_name, cwd=str(path), execution_timeout=cell_timeout,
                    progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                    kernel_manager_class=_ipc_kernel_manager(
                        sock_dir, {"INCIDENT_RUN_TOKEN": token, "INCIDENT_HOME": str(home)}),
                )
                state, error = _check_findings(path, stage, token)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a stage state
                state, error = _classify(exc)
            finally:
                shutil.rmtree(sock_dir, ignore_errors=True)
                saved = _publish(part_nb, out_nb)
            if saved is not None and state == "ok":
                state, error = "failed", f"the executed notebook could not be saved: {saved}"
            status.stage(stage, state=state, ended=_now(), error=error,
                         seconds=round(time.monotonic() - t0, 2),
                         notebook=f"notebooks/{NOTEBOOKS[stage]}" if out_nb.is_file() else None)
            sent_early = early() if early is not None else False
            if chat is not None and state == "ok" and not sent_early:
                notify_stage(chat, path, stage)
        report = path / "report.md"
        if "postmortem" in stages and status.data["stages"]["postmortem"]["state"] != "ok":
            try:
                _fallback_report(path)
            except OSError as exc:
                status.data["report_error"] = _one_line_os(exc)
        if export:
            _export_notebooks(path, status)
        states = [status.data["stages"][s]["state"] for s in stages]
        if all(s == "ok" for s in states) and status.data.get("export_errors"):
            status.data["state"] = "partial"  # findings complete, but an export is missing
        elif all(s == "ok" for s in states):
            status.data["state"] = "ok"
        elif any(s == "ok" for s in states) and report.is_file():
            status.data["state"] = "partial"  # some evidence, and a report saying what is missing
        else:
            status.data["state"] = "failed"
        status.data["report"] = "report.md" if report.is_file() else None
        status.data["ended"] = _now()
        status.write()
        if chat is not None:
            if json.loads((path / "incident.json").read_text("utf-8")).get("resolved_at"):
                chat.submit("resolved")
            chat.close()  # bounded wait (notify.DRAIN_S) for messages still being retried
            status.data = json.loads(status.path.read_text("utf-8"))
        return status.data


def _one_line_os(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return _disk_full(_written(exc))
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _publish(part: Path, out: Path) -> str | None:
    """Rename a complete executed notebook onto out; None on success, else why not (the
    partial file and any older notebook of the stage are removed: nothing stale looks valid)."""
    import nbformat

    try:
        if not part.is_file():
            raise FileNotFoundError("papermill wrote no notebook")
        nbformat.read(part, as_version=4)  # a truncated file does not parse
        os.replace(part, out)
        return None
    except Exception as exc:  # noqa: BLE001 - any reason the notebook is unusable
        for f in (part, out):
            try:
                f.unlink()
            except FileNotFoundError:
                pass
        return _one_line_os(exc)


def _ipc_kernel_manager(sock_dir: str, env: dict[str, str]) -> type:
    """A kernel manager on IPC sockets in a private folder (no TCP ports, no port races) whose
    kernel gets `env` added to its environment (per kernel, never via os.environ)."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.transport = "ipc"
            self.ip = os.path.join(sock_dir, "kernel")

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = {**(kw.get("env") or os.environ), **env}
            return await super()._async_pre_start_kernel(**kw)

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client interrupts before every shutdown; a SIGINT that lands while the
            # kernel handles a message prints "KeyboardInterrupt caught in kernel." on the
            # user's terminal. The shutdown request alone ends an idle kernel (and a stuck one
            # is killed after the wait); a cell timeout still interrupts.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return IPCKernelManager


def _check_findings(path: Path, stage: str, token: str) -> tuple[str, str | None]:
    f = path / "findings" / f"{stage}.json"
    try:
        env = json.loads(f.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return "failed", "the notebook ended without writing its findings (early exit?)"
    if env.get("run_token") != token:
        return "failed", "the notebook ended without writing its findings (early exit?)"
    return "ok", None


def _fallback_report(path: Path) -> None:
    try:
        render_report(Run(path))
    except Exception as exc:  # noqa: BLE001 - the report must exist whatever happened
        atomic_write_text(path / "report.md", (
            f"# Postmortem {path.name}\n\n> **The report could not be rendered** "
            f"({type(exc).__name__}). See status.json for each stage's state.\n"))


def _export_notebooks(path: Path, status: _Status) -> None:
    """Executed notebooks -> Markdown (inputs hidden, Markdown tables, figures in *_files/)."""

    for stage, nb in NOTEBOOKS.items():
        src = path / "notebooks" / nb
        if src.is_file():
            try:
                export_markdown(src, src.with_suffix(".md"))
            except Exception as exc:  # noqa: BLE001 - export problems never fail the run
                status.data.setdefault("export_errors", {})[stage] = _one_line_os(exc)
    try:
        export_run_html(path)  # runs/<id>/investigation.html: code hidden, contents, figures
    except Exception as exc:  # noqa: BLE001 - export problems never fail the run
        status.data.setdefault("export_errors", {})["html"] = _one_line_os(exc)


def create_demo_run(root: Path | None = None, data: Path | None = None,
                    incident_id: str = DEMO_RUN_ID) -> Path:
    """Generate demo telemetry if needed and create the demo incident's run folder."""

    data = data or demo_data_dir()
    if not (data / "incident.yaml").is_file():
        generate_demo(data)
    config = load_config(data_dir=data)
    payload = json.loads((data / "alert.json").read_text("utf-8"))
    inc = incident_from_alert(payload, config, incident_id=incident_id)
    return create_run(inc, root, replace=True)


def demo_data_dir(seed: int = 42, size: int = 200_000) -> Path:
    """Where the demo telemetry lives (git-ignored, under runs/.data)."""
    return runs_root() / ".data" / f"demo-s{seed}-n{size}"
