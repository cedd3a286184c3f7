"""The Nezha harness end to end on a tiny raw Nezha-shaped folder generated here.

Proves: `incident run` reads the raw layout through the documented incident.yaml alone (no
converted copies), the window comes from inject_time only and no investigation process ever
opens the fault list (an audit hook in every child Python process logs opened paths), a
telemetry without error signal is not reported as "0.0% of requests failed", and the last
line has the documented format.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import nezha  # noqa: E402

INJECT = pd.Timestamp("2023-01-29 10:30:00", tz="UTC")
PODS = {"gateway": "gateway-6f6cfc45b-h5m2n", "orders": "orders-5b67c48447-mv5hb",
        "contacts": "contacts-866bd68c97-xcqfx"}
METRIC_COLS = ["Time", "TimeStamp", "PodName", "CpuUsage(m)", "CpuUsageRate(%)",
               "MemoryUsage(Mi)", "PodServerLatencyP90(s)", "PodServerLatencyP99(s)",
               "PodWorkload(Ops)", "PodSuccessRate(%)", "NetworkReceiveBytes"]
AUDIT = """\
import os
_path = os.environ.get("NEZHA_AUDIT_LOG")
if _path:
    import sys
    _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            os.write(_fd, os.fsencode(args[0]) + b"\\n")

    sys.addaudithook(_hook)
"""


def _ns(t: pd.Timestamp) -> int:
    return int(t.value)


def make_nezha_folder(root: Path) -> Path:
    """rca_data/<date>/ with fault list, log/, trace/, metric/ shaped like the published one."""
    data = root / "rca_data" / "2023-01-29"
    for d in ("log", "trace", "metric"):
        (data / d).mkdir(parents=True)
    rng = np.random.default_rng(7)
    (data / "2023-01-29-fault_list.json").write_text(json.dumps({"10": [{
        "inject_time": "2023-01-29 10:30:00", "inject_timestamp": "1674959400",
        "inject_pod": PODS["contacts"], "inject_type": "exception"}]}))
    start = INJECT - pd.Timedelta("30min")
    for svc, pod in PODS.items():
        with open(data / "metric" / f"{pod}_metric.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(METRIC_COLS)
            for i in range(40):
                t = start + pd.Timedelta(minutes=i, seconds=9)
                bad = svc == "contacts" and t >= INJECT
                w.writerow([f"{t} +0000 UTC m=+{i * 60}.1", int(t.timestamp()), pod,
                            (400 if bad else 5) + rng.random(), 1.0, 300 + rng.random(),
                            (0.9 if bad else 0.02) + 0.001 * rng.random(),
                            (1.5 if bad else 0.04) + 0.001 * rng.random(),
                            10 + rng.random(), 0, 1000 + rng.random()])
    for m in [*range(0, 25, 3), 29, 30, 31, 32]:
        minute = start + pd.Timedelta(minutes=m)
        _minute_files(data, minute, rng)
    return data


def _minute_files(data: Path, minute: pd.Timestamp, rng: np.random.Generator) -> None:
    name = f"{minute:%H_%M}"
    with open(data / "log" / f"{name}_log.csv", "w", newline="") as lf, \
            open(data / "trace" / f"{name}_trace.csv", "w", newline="") as tf:
        logs, spans = csv.writer(lf), csv.writer(tf)
        logs.writerow(["Timestamp", "TimeUnixNano", "Node", "PodName", "Container", "TraceID",
                       "SpanID", "Log"])
        spans.writerow(["TraceID", "SpanID", "ParentID", "PodName", "OperationName",
                        "StartTimeUnixNano", "EndTimeUnixNano", "Duration"])
        for k in range(30):
            t = minute + pd.Timedelta(seconds=2 * k)
            bad = t >= INJECT
            tid = f"{rng.integers(1 << 62):032x}"
            parent = "root"
            for depth, (svc, pod) in enumerate(PODS.items()):
                sid = f"{tid[:12]}{depth:04d}"
                st = t + pd.Timedelta(milliseconds=depth)
                dur = pd.Timedelta(milliseconds=(900 if bad else 20) - depth)
                spans.writerow([tid, sid, parent, pod, f"GET /{svc}", _ns(st), _ns(st + dur),
                                int(dur.value / 1000)])
                level = "ERROR" if bad and svc == "contacts" else "INFO"
                text = ("[findContacts][Find contacts failed][Code not found]"
                        if level == "ERROR" else f"[{svc}][handled request id={k}]")
                line = f"{st:%H:%M:%S}.000 {level}  c.{svc}.Impl#42 TraceID: {tid} {text}\n"
                logs.writerow([st.isoformat().replace("+00:00", "Z"), _ns(st), "10.0.0.1", pod,
                               "server", tid, sid, json.dumps({"log": line, "stream": "stdout",
                                                               "time": st.isoformat()})])
                parent = sid


def test_harness_on_raw_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    data = make_nezha_folder(tmp_path)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT)
    audit = tmp_path / "opened.txt"
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setenv("NEZHA_AUDIT_LOG", str(audit))
    work = tmp_path / "work"
    assert nezha.main(["--data", str(data), "--cases", "1", "--keep", str(work)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "entry service: gateway (most root spans)"
    assert re.fullmatch(r"overall cases=1 AC@1=\d\.\d\d AC@3=\d\.\d\d AC@5=\d\.\d\d "
                        r"Avg@5=\d\.\d\d", out[-1])
    opened = audit.read_text(errors="replace").splitlines()
    assert any(p.endswith("incident.yaml") for p in opened)   # the hook saw the runs
    assert any(p.endswith("_log.csv") for p in opened)        # raw files were read
    assert not [p for p in opened if "fault_list" in p]        # ground truth never was
    cfg = (work / "cases" / "case-00" / "incident.yaml").read_text()
    assert f"{data.resolve()}/log/*_log.csv" in cfg
    assert not list((work / "cases").rglob("*.csv"))           # no converted copies
    run = work / "runs" / "case-00"
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "ok", status
    triage = json.loads((run / "findings" / "triage.json").read_text())["data"]
    assert "error_rate (no signal)" in triage["missing"]
    assert triage["impact"]["customer_error_share"] is None
    report = (run / "report.md").read_text()
    assert "0.0% of customer-facing requests failed" not in report
    assert "no error data" in report
    inc = json.loads((run / "incident.json").read_text())
    assert inc["alert_time"].startswith("2023-01-29T10:30:00")
    assert inc["start"].startswith("2023-01-29T10:10:00") and inc["end"].startswith(
        "2023-01-29T10:34:00")


def test_position_counts_a_tie_at_its_last_place() -> None:
    ranked, ranks = ["a", "b", "c", "d"], [1, 1, 1, 4]
    assert nezha.position(ranked, ranks, "a") == 3
    assert nezha.position(ranked, ranks, "d") == 4
    assert nezha.position(ranked, ranks, "x") is None
    rows = [{"pos": 1}, {"pos": 3}, {"pos": None}, {"pos": 6}]
    s = nezha.scores(rows)
    assert (s["AC@1"], s["AC@3"], s["AC@5"]) == (0.25, 0.5, 0.5)
    assert s["Avg@5"] == pytest.approx((0.25 + 0.25 + 0.5 + 0.5 + 0.5) / 5)


def test_normal_windows_lie_in_the_fault_free_coverage(tmp_path: Path) -> None:
    data = make_nezha_folder(tmp_path)
    times = nezha.normal_windows(data, 4)
    assert len(times) == 4 and times == sorted(times)
    first, last = INJECT - pd.Timedelta("30min"), INJECT + pd.Timedelta("3min")
    assert all(first <= t <= last for t in times)


def test_quiet_windows_keep_clear_of_every_injection() -> None:
    from nezha_load import quiet_times

    day = pd.Timestamp("2023-01-29", tz="UTC")
    inj = [day + pd.Timedelta(hours=h, minutes=m) for h, m in ((9, 30), (10, 0), (14, 5))]
    times = quiet_times(inj, 6)
    assert len(times) == 6 and times == sorted(times)
    for t in times:
        assert all(not (t - pd.Timedelta("25min") <= x <= t + pd.Timedelta("10min"))
                   for x in inj), t
    assert quiet_times([], 3) == []
