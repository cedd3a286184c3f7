"""Hostile log lines, personal data and secrets through a real run (issue 8 rows 11, 14, 15)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import mistune
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from incident_lib.core.config import load_config
from incident_lib.demo.generator import DemoSpec, generate_demo
from incident_lib.pipeline.alerts import incident_from_alert
from incident_lib.pipeline.runner import create_run, execute

CANARY = "canary-s3cr3t-7f3a9b21c4"
HOSTILE = ("<img src=x onerror=alert(1)> ```` [click](javascript:alert(1)) \x1b[31mRED\x1b[0m "
           "\u202eevil\u202c | # heading " + "A" * 1_000_000)
PII = ["alice.smith@example.com", "203.0.113.77", "4111 1111 1111 1111"]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo whose payments logs carry hostile text and personal data in the incident."""
    tmp = tmp_path_factory.mktemp("hostile")
    data = generate_demo(tmp / "data", DemoSpec(size=20_000))
    extra = []
    for i in range(40):
        t = pd.Timestamp("2026-11-20T10:50:00Z") + pd.Timedelta(seconds=15 * i)
        msg = HOSTILE if i % 2 else (f"refund failed for {PII[0]} from {PII[1]} card {PII[2]}")
        extra.append(json.dumps({"@timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                                 "service.name": "payments", "log.level": "error",
                                 "message": msg, "host.name": "payments-8f2a1-a"}))
    with open(data / "logs.ndjson", "a") as fh:
        fh.write("\n".join(extra) + "\n")
    cfg = yaml.safe_load((data / "incident.yaml").read_text())
    cfg["sources"]["metrics"]["token_env"] = "INCIDENT_TEST_CANARY"  # a secret named, not stored
    (data / "incident.yaml").write_text(yaml.safe_dump(cfg))
    mp = pytest.MonkeyPatch()
    mp.setenv("INCIDENT_TEST_CANARY", CANARY)
    mp.setenv("INCIDENT_RUNS_DIR", str(tmp / "runs"))
    try:
        payload = json.loads((data / "alert.json").read_text())
        title = "<img src=x onerror=alert(2)> [x](javascript:alert(3)) # t"
        payload["commonAnnotations"]["summary"] = title  # the report title, status update
        payload["commonLabels"]["team"] = "<script>alert(4)</script>"
        inc = incident_from_alert(payload, load_config(data_dir=data), incident_id="hostile")
        path = create_run(inc)
        st = execute(path)
        assert st["state"] == "ok", st
    finally:
        mp.undo()
    shutil.rmtree(data)  # only the run folder remains to be inspected
    return path


def _texts(run: Path) -> dict[Path, str]:
    out = {}
    for f in run.rglob("*"):
        if f.is_file():
            if f.suffix == ".parquet":
                out[f] = pq.read_table(f).to_pandas().to_csv()
            else:
                out[f] = f.read_bytes().decode("utf-8", "replace")
    return out


def test_hostile_log_lines_are_inert_in_report_and_exports(hostile_run: Path) -> None:
    # render with a Markdown engine that passes raw HTML through (escape=False): anything not
    # neutralised by our escaping would come out as a live tag or link
    md = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    seen = 0
    for name in ("report.md", "notebooks/02_correlation.md", "notebooks/03_five_whys.md"):
        text = (hostile_run / name).read_text()
        assert "\x1b" not in text and "\u202e" not in text, name
        assert max(len(line) for line in text.splitlines()) < 5000, name
        html = md(text)
        imgs = re.findall(r'<img src="([^"]*)"', html)
        assert all(src.startswith(("report_files/", "0")) for src in imgs), (name, imgs)
        assert "onerror=alert(" not in "".join(re.findall(r"<[^>]*>", html)), name
        assert "<script" not in html, name
        assert 'href="javascript:' not in html, name
        assert not re.search(r"<h1>\s*heading", html), name
        seen += text.count("onerror=alert")
    assert seen > 0  # the hostile template is shown (inert), not silently dropped
    report = (hostile_run / "report.md").read_text()
    title = report.splitlines()[0]
    assert title.startswith("# Incident summary hostile: \\<img src=x onerror=alert(2)> \\[x]")
    # the hostile title renders as its own text: no tag, no link
    assert "<img" not in md(title) and "<a " not in md(title) and "onerror" in md(title)


def test_personal_data_is_redacted_everywhere(hostile_run: Path) -> None:
    texts = _texts(hostile_run)
    for f, text in texts.items():
        for value in PII:
            assert value not in text, f"{value} in {f}"
    logs = pq.read_table(hostile_run / "evidence" / "logs.parquet").to_pandas()
    red = logs[logs["message"].str.startswith("refund failed", na=False)]
    assert len(red) == 20
    assert red["message"].iloc[0] == "refund failed for <email> from <ip> card <card>"


def test_canary_secret_never_lands_in_the_run(hostile_run: Path) -> None:
    for f, text in _texts(hostile_run).items():
        assert CANARY not in text, f
    inc = json.loads((hostile_run / "incident.json").read_text())
    assert inc["sources"]["metrics"]["token_env"] == "INCIDENT_TEST_CANARY"
