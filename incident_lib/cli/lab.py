"""`incident lab`: JupyterLab on 127.0.0.1 with a token, in notebooks/, on this environment."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.resources import notebooks_dir
from ..core.storage import workspace

__all__ = ["register", "cmd_lab", "lab_command", "lab_env", "write_kernelspec", "free_port",
           "KERNEL_NAME"]

KERNEL_NAME = "python3"  # the name the notebooks' metadata asks for
HOST = "127.0.0.1"


def register(sub: Any) -> None:
    """Add the `lab` sub-command to the `incident` parser."""
    p = sub.add_parser("lab", help="open the notebooks in JupyterLab (127.0.0.1, token)")
    p.add_argument("--port", type=int, default=8888,
                   help="port on 127.0.0.1 (default 8888; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--notebook-dir", help="folder to serve (default the project's notebooks/)")
    p.set_defaults(func=cmd_lab)


def write_kernelspec(data_dir: Path, python: str | None = None) -> Path:
    """Write kernels/python3/kernel.json under data_dir, running `python` (this interpreter)."""
    python = python or sys.executable
    kdir = Path(data_dir) / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (incident_lib)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", "utf-8")
    return kdir / "kernel.json"


def lab_command(port: int, root_dir: Path, *, open_browser: bool = True,
                python: str | None = None) -> list[str]:
    """The JupyterLab command line (loopback only; the token travels in the environment)."""
    return [
        python or sys.executable, "-m", "jupyterlab",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_dir}",
        f"--ServerApp.open_browser={open_browser}",
        "--ServerApp.allow_remote_access=False",
        f"--KernelSpecManager.allowed_kernelspecs={KERNEL_NAME}",
        "--LabApp.news_url=None",  # no calls out: news, update checks, extension manager
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        # defaults for this Lab only: no "get notified about Jupyter news?" prompt
        f"--LabApp.app_settings_dir={Path(__file__).with_name('lab_settings')}",
        *(["--ServerApp.allow_root=True"] if _is_root() else []),  # containers, CI
    ]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_env(private_dir: Path, token: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the server: the token, and a private kernelspec/runtime folder first."""
    env = dict(os.environ if base is None else base)
    data = Path(private_dir) / "data"
    runtime = Path(private_dir) / "runtime"
    write_kernelspec(data)
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = [str(data)] + [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    env["JUPYTER_PATH"] = os.pathsep.join(paths)  # searched before the user's own kernels
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)  # connection files + jpserver-*.json (token)
    env["JUPYTER_TOKEN"] = token
    env.setdefault("INCIDENT_HOME", str(workspace()))  # kernels find runs/ and kb/ here
    env.pop("JUPYTER_PASSWORD", None)
    return env


def free_port() -> int:
    """A port that is free on 127.0.0.1 right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _notebooks_dir(value: str | None) -> Path:
    """--notebook-dir, else notebooks/ in the workspace (copied from the package on first use,
    so Lab never saves into the installed package)."""
    if value:
        folder = Path(value).resolve()
    else:
        folder = workspace() / "notebooks"
        if not (folder / "01_triage.ipynb").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            for nb in sorted(notebooks_dir().glob("*.ipynb")):
                if not (folder / nb.name).exists():
                    shutil.copyfile(nb, folder / nb.name)
    if not folder.is_dir():
        raise InputError(f"notebook folder {folder} does not exist")
    return folder


def cmd_lab(args: argparse.Namespace) -> int:
    """Start JupyterLab until Ctrl-C; print the URL with its token once."""

    if not 0 <= args.port <= 65535:
        raise InputError("--port must be between 0 and 65535")
    try:
        import ipykernel  # noqa: F401
        import jupyterlab  # noqa: F401
    except ImportError as exc:
        raise InputError(f"JupyterLab is not installed in this environment ({exc.name}): "
                         f"{sys.executable} -m pip install 'incident_lib[lab]'") from None
    root = _notebooks_dir(args.notebook_dir)
    port = args.port or free_port()
    token = secrets.token_urlsafe(24)
    private = Path(tempfile.mkdtemp(prefix="incident-lab-"))
    try:
        env = lab_env(private, token)
        cmd = lab_command(port, root, open_browser=not args.no_browser)
        print(f"JupyterLab: http://{HOST}:{port}/lab?token={token}\n"
              f"  serving {root}; kernel: {sys.executable}. Ctrl-C stops it.",
              file=sys.stderr, flush=True)
        proc = subprocess.Popen(cmd, env=env, cwd=root)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # stop the server with us
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return 130
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        shutil.rmtree(private, ignore_errors=True)
