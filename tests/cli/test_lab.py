"""`incident lab`: JupyterLab on 127.0.0.1 only, token required, kernel of this environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from incident_lib.cli import lab
from incident_lib.cli.main import main
from tests.conftest import ROOT


@dataclass
class Lab:
    """A running `incident lab` process and what a client needs to reach it."""

    proc: subprocess.Popen
    port: int
    token: str
    notebooks: Path
    runs: Path
    log: Path

    @property
    def base(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """GET without following redirects; (status, body, headers)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[override]
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@contextmanager
def start_lab(tmp: Path, demo_data: Path | None = None, timeout: float = 60) -> Iterator[Lab]:
    """Run `incident lab` on a copy of notebooks/ with a private runs folder; stop it after."""
    nbs = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", nbs)  # Lab may autosave: not the checkout
    runs = tmp / "runs"
    runs.mkdir()
    if demo_data is not None:  # reuse the session's telemetry instead of regenerating it
        (runs / ".data").mkdir()
        (runs / ".data" / "demo-s42-n200000").symlink_to(demo_data)
    env = {**os.environ, "INCIDENT_RUNS_DIR": str(runs),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
           "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config")}
    log = tmp / "lab.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "incident_lib.cli", "lab", "--port", "0", "--no-browser",
             "--notebook-dir", str(nbs)],
            env=env, cwd=tmp, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        port = token = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text(errors="replace")
            m = re.search(r"http://127\.0\.0\.1:(\d+)/lab\?token=([\w-]+)",
                          log.read_text(errors="replace"))
            if m:
                port, token = int(m.group(1)), m.group(2)
                try:
                    if _get(f"http://127.0.0.1:{port}/api/status?token={token}")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.3)
        else:
            raise AssertionError(f"JupyterLab did not start:\n{log.read_text(errors='replace')}")
        yield Lab(proc, port, token, nbs, runs, log)
    finally:
        stop_lab(proc)


def stop_lab(proc: subprocess.Popen) -> int:
    """SIGTERM `incident lab` (it stops the server and kernels); kill its group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return int(proc.returncode)


def _listening(port: int) -> list[str]:
    """Local addresses in LISTEN state on `port`, from /proc/net/tcp and tcp6."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if int(hexport, 16) == port and state == "0A":
                found.append(addr)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One `incident lab` for the module's server tests."""
    with start_lab(tmp_path_factory.mktemp("lab")) as srv:
        yield srv


def test_command_is_loopback_only_and_token_not_on_the_command_line() -> None:
    cmd = lab.lab_command(8899, Path("/x/notebooks"), open_browser=False)
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert "--ServerApp.ip=127.0.0.1" in cmd
    assert "--ServerApp.root_dir=/x/notebooks" in cmd
    assert "--ServerApp.open_browser=False" in cmd
    assert not any("token" in a.lower() for a in cmd)  # would show in `ps`
    assert "--KernelSpecManager.allowed_kernelspecs=python3" in cmd
    assert "--LabApp.news_url=None" in cmd  # no calls out from the server
    assert "--LabApp.extension_manager=readonly" in cmd


def test_env_has_token_and_private_kernelspec_of_this_interpreter(tmp_path: Path) -> None:
    env = lab.lab_env(tmp_path, "tok123", base={"JUPYTER_PATH": "/other", "PATH": "/bin"})
    assert env["JUPYTER_TOKEN"] == "tok123"
    assert env["JUPYTER_PATH"].split(os.pathsep) == [str(tmp_path / "data"), "/other"]
    assert env["JUPYTER_RUNTIME_DIR"] == str(tmp_path / "runtime")
    spec = json.loads((tmp_path / "data" / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][:3] == [sys.executable, "-m", "ipykernel_launcher"]
    out = subprocess.run([spec["argv"][0], "-c", "import incident_lib, ipykernel; "
                          "print(incident_lib.__file__)"],
                         capture_output=True, text=True, check=True, timeout=60)
    assert Path(out.stdout.strip()).resolve().is_relative_to(ROOT)


def test_bad_port_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err


def test_missing_notebook_dir_is_an_input_error(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--port", "0", "--notebook-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_requests_without_the_token_are_refused(server: Lab) -> None:
    for path in ("/api/contents", "/api/kernels", "/api/kernelspecs", "/api/sessions"):
        status, _, _ = _get(server.base + path)
        assert status == 403, path
        status, _, _ = _get(server.base + path + "?token=wrong-" + server.token[:8])
        assert status == 403, path
        status, _, _ = _get(server.base + path,
                            headers={"Authorization": "token not-the-token"})
        assert status == 403, path
    status, _, headers = _get(server.base + "/lab")
    assert status == 302 and "/login" in headers["Location"]


def test_requests_with_the_token_work_and_list_the_notebooks(server: Lab) -> None:
    status, body, _ = _get(server.base + "/api/contents",
                           headers={"Authorization": f"token {server.token}"})
    assert status == 200
    names = sorted(item["name"] for item in json.loads(body)["content"])
    assert names == ["01_triage.ipynb", "02_correlation.ipynb", "03_five_whys.ipynb",
                     "04_postmortem.ipynb"]


def test_only_kernel_is_this_environment(server: Lab) -> None:
    status, body, _ = _get(f"{server.base}/api/kernelspecs?token={server.token}")
    assert status == 200
    specs = json.loads(body)
    assert specs["default"] == "python3"
    assert list(specs["kernelspecs"]) == ["python3"]
    argv = specs["kernelspecs"]["python3"]["spec"]["argv"]
    assert argv[0] == sys.executable and argv[1:3] == ["-m", "ipykernel_launcher"]


def test_listens_on_loopback_only(server: Lab) -> None:
    """The listening socket is bound to 127.0.0.1 only (read from /proc/net/tcp{,6}); no
    wildcard or IPv6 socket. Only loopback is ever connected to: this workplace forbids
    traffic to any other address, even this machine's own interface addresses."""
    addrs = _listening(server.port)
    assert addrs, "the server's socket was not found in /proc/net/tcp"
    assert set(addrs) == {"0100007F"}  # 127.0.0.1, and no IPv6 or wildcard socket
    with socket.socket(socket.AF_INET6) as s:
        s.settimeout(2)
        assert s.connect_ex(("::1", server.port)) != 0


def test_token_is_printed_once_and_written_nowhere_near_the_project(server: Lab) -> None:
    log = server.log.read_text(errors="replace")
    assert log.count(server.token) == 1
    assert "/lab?token=..." in log  # the server's own log line masks it
    for folder in (server.notebooks, server.runs):
        for f in folder.rglob("*"):
            if f.is_file():
                assert server.token.encode() not in f.read_bytes(), f


def test_stopping_lab_stops_the_server_and_removes_its_private_folder(tmp_path: Path) -> None:
    with start_lab(tmp_path) as srv:
        private = re.findall(r"(/\S*incident-lab-\w+)/runtime", srv.log.read_text())
        assert private and Path(private[0]).is_dir()
        assert stop_lab(srv.proc) == 130
    assert not Path(private[0]).exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


@pytest.mark.parametrize("name", ["01_triage", "02_correlation", "03_five_whys",
                                  "04_postmortem"])
def test_notebook_opens_with_intro_and_documented_parameters(name: str) -> None:
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == lab.KERNEL_NAME  # the kernel `lab` provides
    intro = nb.cells[0]
    assert intro.cell_type == "markdown" and intro.source.startswith("# ")
    assert "Answers" in intro.source and "**Parameters.**" in intro.source
    assert "run_dir" in intro.source
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and nb.cells.index(params[0]) == 1
    code = [ln for ln in params[0].source.splitlines() if ln.strip()]
    assigned = [ln.split("=")[0].strip() for ln in code if not ln.startswith("#")]
    assert assigned == ["run_dir"] and 'run_dir = ""' in code
    comments = " ".join(ln for ln in code if ln.startswith("#"))
    assert "run_dir:" in comments and "demo" in comments  # each parameter explained
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # no stale outputs
