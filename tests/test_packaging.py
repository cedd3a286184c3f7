"""A plain (non-editable) install runs the demo from any folder: the wheel carries the
notebooks and templates, and the code finds them with importlib.resources, not the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, unpacked as an installed package would be."""
    out = tmp_path_factory.mktemp("wheel")
    src = tmp_path_factory.mktemp("src") / "incident_lib"  # never build inside the checkout
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(src)], check=True, capture_output=True,
                   timeout=300)
    (wheel,) = out.glob("incident_lib-*.whl")
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "incident_lib/bundled/notebooks/01_triage.ipynb" in names
        assert "incident_lib/bundled/templates/postmortem.md.j2" in names
        assert "incident_lib/core/signals.yaml" in names
        z.extractall(site)
    return site


def _env(site: Path, cwd: Path) -> dict[str, str]:
    # the installed copy comes first on sys.path (before the editable checkout); runs/ and
    # kb/ go to the folder the user is in
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    return {**env, "PYTHONPATH": str(site), "HOME": str(cwd)}


def test_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    code = ("import incident_lib, incident_lib.core.resources as r; "
            "print(incident_lib.__file__); print(r.notebooks_dir())")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(installed, tmp_path),
                         capture_output=True, text=True, check=True, timeout=120)
    pkg, nbs = out.stdout.split()
    assert Path(pkg).is_relative_to(installed) and Path(nbs).is_relative_to(installed)


def test_demo_and_front_door_run_from_another_folder(installed: Path, tmp_path: Path) -> None:
    env = _env(installed, tmp_path)
    incident = Path(sys.executable).with_name("incident")
    res = subprocess.run([str(incident), "demo", "--size", "20000"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    report = tmp_path / "runs" / "demo-payments" / "report.md"
    assert Path(res.stdout.strip()) == report
    assert "chg-1004" in report.read_text()
    data = next((tmp_path / "runs" / ".data").iterdir())
    code = ("import incident_lib as il; "
            f"run = il.investigate(alert={str(data / 'alert.json')!r}, data={str(data)!r}, "
            "incident_id='front-door'); "
            "cor = run.correlation(); print(run.status()['state'], cor.top.service)")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["ok", "payments"]
    status = json.loads((tmp_path / "runs" / "front-door" / "status.json").read_text())
    assert all(s["state"] == "ok" for s in status["stages"].values())
