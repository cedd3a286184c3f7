"""Knowledge base: entries round trip, similar incidents (planted repeat), metrics, bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from incident_lib import kb
from incident_lib.cli.main import main
from incident_lib.runs.folder import Run

BASE = pd.Timestamp("2026-01-05T09:00:00Z")
PLANTED = "inc-2026-04-06-payments-pool"
POOL_TEMPLATE = ("could not acquire database connection within <*>: pool exhausted "
                 "(<*> in use, <*> waiting)")
# name: (services, root-cause service, signals, labels, templates, title)
PROFILES = {
    "redis": (["checkout"], "checkout", ["error_rate", "error_rate@checkout"],
              {"alertname": "HighErrorRate", "service": "checkout"},
              ["redis timeout after <*> on get cart <*>"], "checkout cart cache timeouts"),
    "cdn": (["frontend"], "frontend", ["latency_p99", "latency_p99@frontend"],
            {"alertname": "HighLatency", "service": "frontend"},
            ["upstream cdn returned <*> for asset <*>"], "frontend assets slow"),
    "slowquery": (["inventory", "postgres"], "postgres", ["latency_p99", "latency_p99@inventory"],
                  {"alertname": "HighLatency", "service": "inventory"},
                  ["slow query on inventory_items took <*>"], "inventory lookups slow"),
    "provider": (["payments"], "payments", ["error_rate", "error_rate@payments"],
                 {"alertname": "PaymentsProviderErrors", "service": "payments"},
                 ["provider acme returned <*> for charge <*>"], "card provider outage"),
    "oom": (["checkout"], "checkout", ["memory", "memory@checkout"],
            {"alertname": "PodOOMKilled", "service": "checkout"},
            ["container checkout killed: out of memory"], "checkout pods OOM killed"),
    "cert": (["payments", "checkout"], "payments",
             ["error_rate", "error_rate@payments", "error_rate@checkout"],
             {"alertname": "HighErrorRate", "service": "checkout", "team": "shop"},
             ["TLS handshake with <*> failed: certificate expired"],
             "checkout 5xx above 5% for 5 minutes"),
    "disk": (["postgres", "inventory", "payments"], "postgres", ["disk_usage@postgres"],
             {"alertname": "DiskFull", "service": "postgres"},
             ["could not extend file <*>: No space left on device"], "postgres disk full"),
    "fdeploy": (["frontend", "checkout"], "frontend", ["error_rate", "error_rate@frontend"],
                {"alertname": "HighErrorRate", "service": "frontend"},
                ["TypeError: cannot read property <*> of undefined"], "frontend JS errors"),
    "pool": (["payments", "checkout", "frontend"], "payments",
             ["error_rate", "latency_p99", "db_pool_utilization", "error_rate@payments",
              "latency_p99@payments", "error_rate@checkout", "db_pool_utilization@payments"],
             {"alertname": "HighErrorRate", "service": "checkout", "team": "shop"},
             [POOL_TEMPLATE, "payment authorization failed for order <*>: payments returned <*>"],
             "checkout 5xx above 5% for 5 minutes"),
    "dns": (["frontend", "checkout", "payments", "inventory"], "frontend", ["error_rate"],
            {"alertname": "ProbeFailed", "service": "frontend"},
            ["lookup <*> on <*>: no such host"], "DNS resolution failures"),
    "queue": (["inventory"], "inventory", ["queue_depth@inventory"],
              {"alertname": "QueueBacklog", "service": "inventory"},
              ["consumer lag <*> on topic stock-updates"], "stock updates delayed"),
}
ORDER = ["redis", "cdn", "slowquery", "provider", "oom", "cert", "disk", "fdeploy", "redis",
         "cdn", "slowquery", "provider", "oom", "pool", "disk", "fdeploy", "redis", "dns",
         "slowquery", "queue"]
REPEATS = {8: 0, 16: 8, 9: 1, 18: 10}


def _iso(ts: pd.Timestamp | None) -> str | None:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ") if ts is not None else None


def past_entry(i: int) -> dict:
    """The i-th generated past incident (times chosen so the metrics are easy by hand)."""
    services, cause, signals, labels, templates, title = PROFILES[ORDER[i]]
    started = BASE + pd.Timedelta(days=7 * i)
    detected = started + pd.Timedelta(minutes=i % 5 + 1)
    mitigated = started + pd.Timedelta(minutes=10 * (i + 1))
    iid = PLANTED if ORDER[i] == "pool" else f"inc-{i:02d}-{ORDER[i]}"
    done = {0: 2, 1: 1, 2: 0}[i % 3]
    actions = [
        {"action": f"Fix {ORDER[i]} root cause", "type": "fix", "owner": "alice",
         "due": "2026-06-01", "status": "done" if done >= 1 else "open"},
        {"action": "Alert on db pool utilization above 80%" if ORDER[i] == "pool"
         else f"Add a check for {ORDER[i]}", "type": "prevent", "owner": "bob",
         "due": "2026-07-01", "status": "done" if done == 2 else "open"},
    ]
    return {
        "incident_id": iid, "title": title,
        "severity": "P1" if i < 3 else "P2" if i < 8 else "P3" if i < 15 else "P4",
        "started": _iso(started), "detected": _iso(detected),
        "acknowledged": _iso(detected + pd.Timedelta(minutes=2)) if i % 2 == 0 else None,
        "mitigated": _iso(mitigated), "resolved": _iso(mitigated + pd.Timedelta(minutes=30)),
        "duration": 600 * (i + 1),
        "impact": {"customer_error_share": 0.01 * (i + 1), "users_affected": None},
        "services": services,
        "root_cause": {"service": cause, "change_id": None,
                       "summary": f"{cause}: {ORDER[i]} problem", "confirmed": True},
        "tags": [f"alert:{labels['alertname']}"],
        "repeat_of": f"inc-{REPEATS[i]:02d}-{ORDER[REPEATS[i]]}" if i in REPEATS else None,
        "symptoms": {"signals": signals, "labels": labels, "templates": templates},
        "related_files": ["report.md"],
        "postmortem": f"../runs/{iid}/report.md",
        "action_items": actions,
    }


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 generated past incidents, written as KB entry files."""
    d = tmp_path_factory.mktemp("kb")
    for i in range(20):
        data = past_entry(i)
        (d / f"{data['incident_id']}.md").write_text(kb.render_entry(data), "utf-8")
    return d


def _copy_run(src: Path, dest: Path, stages: tuple[str, ...]) -> Path:
    """A run folder holding only incident.json and the given stages' findings."""
    (dest / "findings").mkdir(parents=True)
    shutil.copy(src / "incident.json", dest / "incident.json")
    for s in stages:
        shutil.copy(src / "findings" / f"{s}.json", dest / "findings" / f"{s}.json")
    return dest


@pytest.fixture()
def triage_only(demo_run: Path, tmp_path: Path) -> Run:
    """The demo run as the triage notebook sees it (triage findings, no correlation yet)."""
    return Run(_copy_run(demo_run, tmp_path / "e2e-demo", ("triage",)))


def test_generated_entries_round_trip(kb_dir: Path) -> None:
    entries, problems = kb.load_kb(kb_dir)
    assert problems == []
    assert len(entries) == 20
    by_id = {e.id: e.data for e in entries}
    for i in range(20):
        data = past_entry(i)
        assert by_id[data["incident_id"]] == data


def test_entry_front_matter_is_yaml_and_body_escaped(tmp_path: Path) -> None:
    data = past_entry(13)
    data["title"] = "pool *exhausted* <script>alert(1)</script>\n---\n# not a heading"
    data["action_items"][0]["action"] = "fix | the [link](http://x)"
    text = kb.render_entry(data)
    fm = text.split("\n---\n", 1)[0].removeprefix("---\n")
    assert yaml.safe_load(fm)["title"] == data["title"].replace("\r", "")
    body = text.split("\n---\n", 1)[1]
    assert "# inc-2026-04-06-payments-pool: pool \\*exhausted\\* \\<script>" in body
    assert "| fix \\| the `[link](http://x)` | fix | alice | 2026-06-01 | done |" in body
    p = tmp_path / "x.md"
    p.write_text(text, "utf-8")
    entry, problems = kb.parse_entry(p)
    assert problems == [] and entry is not None and entry.data == data


def test_triage_lists_planted_repeat_first(kb_dir: Path, triage_only: Run) -> None:
    df = kb.similar_incidents(triage_only, kb_dir, top=5)
    assert df["incident_id"].iat[0] == PLANTED
    assert bool(df["likely_repeat"].iat[0])
    assert df["rank"].tolist() == [1, 2, 3, 4, 5]
    assert df["score"].is_monotonic_decreasing
    assert df["incident_id"].iat[1] == "inc-05-cert"  # same alert and title, other cause
    assert not df["likely_repeat"].iloc[1:].any()
    why = df["why"].iat[0]
    assert why.startswith("services checkout, frontend, payments; signals ")
    assert "labels alertname=HighErrorRate, service=checkout, team=shop" in why
    assert df["s_templates"].iat[0] == 0.0  # triage: no log templates yet
    assert [a["action"] for a in df["open_action_items"].iat[0]] == [
        "Alert on db pool utilization above 80%"]


def test_similar_section_flags_repeat_with_link_and_open_items(kb_dir: Path,
                                                               triage_only: Run) -> None:
    sec = kb.similar_section(triage_only, kb_dir)
    assert sec.title == "Similar past incidents"
    link = str((kb_dir / f"../runs/{PLANTED}/report.md").resolve())
    assert sec.markdown.startswith(
        f"**Likely repeat of {PLANTED}** (checkout 5xx above 5% for 5 "
        f"minutes, 2026-04-06, score ")
    assert f"postmortem [postmortem](<{link}>).\n" in sec.markdown
    assert ("- Alert on db pool utilization above 80% (owner bob, due 2026-07-01, open)"
            in sec.markdown)
    assert sec.data["repeat"]["incident_id"] == PLANTED
    assert sec.data["matches"][0]["incident_id"] == PLANTED
    assert sec.data["problems"] == []
    assert json.loads(json.dumps(sec.data)) == sec.data  # fit for findings/triage.json
    assert sec.data["repeat"]["open_action_items"][0]["owner"] == "bob"


def test_triage_notebook_sections_before_findings_are_saved(kb_dir: Path, demo_run: Path,
                                                            tmp_path: Path,
                                                            triage_only: Run) -> None:
    """In 01_triage the section is built from onset/impact Sections: same symptoms as findings."""
    from incident_lib.stages import triage

    dest = tmp_path / "nb"
    (dest / "evidence").mkdir(parents=True)
    shutil.copy(demo_run / "incident.json", dest / "incident.json")
    for f in (demo_run / "evidence").glob("signal_*.parquet"):
        shutil.copy(f, dest / "evidence" / f.name)
    shutil.copy(demo_run / "evidence" / "index.json", dest / "evidence" / "index.json")
    run = Run(dest)
    sig = triage.golden_signals(run)
    onset = triage.detect_onset(run, sig)
    impact = triage.measure_impact(run, sig, onset)
    assert run.findings("triage") is None
    tri = kb.triage_from_sections(onset, impact)
    assert kb.symptoms_of_run(run, tri) == kb.symptoms_of_run(triage_only)
    sec = kb.similar_section(run, kb_dir, onset=onset, impact=impact)
    assert sec.data["repeat"]["incident_id"] == PLANTED
    assert sec.data["matches"] == kb.similar_section(triage_only, kb_dir).data["matches"]


def test_correlation_templates_confirm_the_repeat(kb_dir: Path, demo_run: Path,
                                                 tmp_path: Path) -> None:
    run = Run(_copy_run(demo_run, tmp_path / "e2e-demo", ("triage", "correlation")))
    df = kb.similar_incidents(run, kb_dir, top=3)
    assert df["incident_id"].iat[0] == PLANTED
    assert df["s_templates"].iat[0] > 0.5
    assert f"template '{POOL_TEMPLATE}'" in df["why"].iat[0]
    cert = df[df["incident_id"] == "inc-05-cert"]
    assert len(cert) == 0 or not bool(cert["likely_repeat"].iat[0])  # other failure signature


def test_text_search_without_a_run(kb_dir: Path) -> None:
    df = kb.similar_incidents(None, kb_dir, top=3, symptoms={
        "services": [], "text": "", "templates": ["could not acquire database connection "
                                                  "within 5s: pool exhausted"]})
    assert df["incident_id"].iat[0] == PLANTED


def test_bad_files_reported_by_file_and_line_and_skipped(kb_dir: Path, tmp_path: Path,
                                                         triage_only: Run) -> None:
    d = tmp_path / "kb"
    shutil.copytree(kb_dir, d)
    (d / "a-broken.md").write_text("---\nincident_id: x\ntitle: [unclosed\nseverity: P1\n---\n")
    (d / "b-missing.md").write_text("---\nincident_id: y\ntitle: t\n---\nbody\n")
    (d / "c-nofm.md").write_text("# just notes\n")
    (d / "d-unclosed.md").write_text("---\nincident_id: z\n")
    (d / "e-badtime.md").write_text(
        "---\nincident_id: w\ntitle: t\nseverity: P2\nstarted: yesterday\nservices: [a]\n---\n")
    entries, problems = kb.load_kb(d)
    assert len(entries) == 20
    assert [p.replace(str(d) + "/", "") for p in problems] == [
        "a-broken.md:4: front matter is not valid YAML (expected ',' or ']', but got ':')",
        "b-missing.md:1: missing field(s) severity, started, services",
        "c-nofm.md:1: no YAML front matter: the file must start with a '---' line",
        "d-unclosed.md:1: front matter is not closed: add a '---' line after it",
        "e-badtime.md:5: started 'yesterday' is not a time (ISO-8601)",
    ]
    sec = kb.similar_section(triage_only, d)
    assert sec.data["repeat"]["incident_id"] == PLANTED
    assert "5 bad KB file(s) skipped:" in sec.markdown


@pytest.mark.parametrize("field,value", [
    ("services", "payments"), ("symptoms", ["a"]), ("symptoms", {"templates": "x y"}),
    ("symptoms", {"labels": ["a=b"]}), ("action_items", [["x"]]), ("action_items", "fix it"),
    ("title", 12), ("severity", None), ("started", 5), ("root_cause", "db"),
    ("tags", {"a": 1}), ("detected", "soon"), ("incident_id", ["x"]),
])
def test_malformed_fields_never_crash_search(kb_dir: Path, tmp_path: Path, triage_only: Run,
                                             field: str, value: object) -> None:
    d = tmp_path / "kb"
    shutil.copytree(kb_dir, d)
    data = past_entry(3)
    data[field] = value
    (d / "zz-odd.md").write_text("---\n" + yaml.safe_dump(data, sort_keys=False) + "---\n")
    entries, problems = kb.load_kb(d)
    assert len(entries) + len(problems) >= 20
    assert all(p.startswith(f"{d}/zz-odd.md:") for p in problems)
    assert kb.similar_section(triage_only, d).data["repeat"]["incident_id"] == PLANTED
    kb.compute_stats(entries)


def test_empty_kb_section(tmp_path: Path, triage_only: Run) -> None:
    sec = kb.similar_section(triage_only, tmp_path / "nokb")
    assert sec.markdown.startswith("No past incidents in the knowledge base (")
    assert sec.data["matches"] == [] and sec.data["repeat"] is None


def test_stats_match_hand_computed_values(kb_dir: Path) -> None:
    entries, _ = kb.load_kb(kb_dir)
    st = kb.compute_stats(entries)
    assert st["incidents"] == 20
    assert st["mttd_s"] == 180.0  # (1+2+3+4+5)/5 minutes
    assert st["mtta_s"] == 120.0  # 2 minutes, even incidents only
    assert st["mttr_s"] == 6300.0  # 10 min * mean(1..20)
    assert st["repeats"] == 4 and st["repeat_rate"] == 0.2
    assert (st["action_items"], st["action_items_done"]) == (40, 21)
    assert st["prevention_rate"] == 0.525
    assert st["by_severity"].to_dict(orient="list") == {
        "severity": ["P1", "P2", "P3", "P4"], "incidents": [3, 5, 7, 5],
        "mttr_s": [1200.0, 3600.0, 7200.0, 10800.0]}
    assert st["by_service"].to_dict(orient="list") == {
        "service": ["checkout", "inventory", "payments", "frontend", "postgres"],
        "incidents": [10, 7, 7, 6, 5]}
    assert st["by_month"].to_dict(orient="list") == {
        "month": ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"],
        "incidents": [4, 4, 5, 4, 3]}


def test_stats_command_writes_markdown_csv_and_plots(kb_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "stats"
    assert main(["stats", "--kb", str(kb_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "stats.md")
    md = (out / "stats.md").read_text()
    assert "| MTTD (detected - started) | 3m |" in md
    assert "| MTTA (acknowledged - detected) | 2m |" in md
    assert "| MTTR (mitigated - started) | 1h45m |" in md
    assert "| Repeat incidents | 4 (20.0%) |" in md
    assert "| Action items done (prevention rate) | 21 of 40 (52.5%) |" in md
    csv = pd.read_csv(out / "stats.csv")
    got = {(r.metric, r.group): r.value for r in csv.itertuples()}
    assert got[("mttr_s", "all")] == 6300.0
    assert got[("incidents", "severity=P3")] == 7
    assert got[("incidents", "service=checkout")] == 10
    assert got[("prevention_rate", "all")] == 0.525
    assert len(pd.read_csv(out / "incidents.csv")) == 20
    for png in ("frequency.png", "mttr_by_severity.png"):
        assert (out / png).stat().st_size > 5_000


def test_kb_add_writes_entry_with_repeat_of(kb_dir: Path, demo_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    d = tmp_path / "kb"
    shutil.copytree(kb_dir, d)
    run = _copy_run(demo_run, tmp_path / "e2e-demo", ("triage", "correlation", "five_whys"))
    shutil.copy(demo_run / "report.md", run / "report.md")
    assert main(["kb", "add", str(run), "--kb", str(d)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == d / "e2e-demo.md"
    entry, problems = kb.parse_entry(path)
    assert problems == [] and entry is not None
    expected = kb.build_entry(Run(run), d)
    assert entry.data == {**expected, "repeat_of": PLANTED}  # lossless, repeat detected
    assert entry.data["root_cause"]["service"] == "payments"
    assert entry.data["services"] == ["checkout", "frontend", "payments"]
    assert entry.data["postmortem"] == "e2e-demo/report.md"
    assert (d / "e2e-demo" / "report.md").read_bytes() == (run / "report.md").read_bytes()
    assert POOL_TEMPLATE in entry.data["symptoms"]["templates"]
    assert [a["owner"] for a in entry.data["action_items"]] == [None] * len(
        entry.data["action_items"])


def test_kb_search_command(kb_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["kb", "search", "--kb", str(kb_dir), "--top", "2", "--text",
                 "could not acquire database connection: pool exhausted"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("| rank | incident_id | title | started | severity | score | "
                      "likely_repeat |")
    assert out[2].startswith("| 1 | inc-2026-04-06-payments-pool | checkout 5xx above 5% ")
    assert len(out) == 7
    assert out[5].startswith("- **#1 inc-2026-04-06-payments-pool** matched on: template "
                             "'could not acquire database connection within <\\*>: "
                             "pool exhausted")
    assert main(["kb", "search", "--kb", str(kb_dir)]) == 2  # needs RUN, --text or --service


def test_entry_has_playbook_sections_and_root_cause_state(demo_run: Path, tmp_path: Path) -> None:
    """Playbook 000's KB template: Timeline, Root cause (with its confirmation state),
    Resolution, Prevention, Action items."""
    run = _copy_run(demo_run, tmp_path / "e2e-demo", ("triage", "correlation", "five_whys"))
    d = tmp_path / "kb"
    text = kb.write_entry(Run(run), d).read_text()
    for section in ("## Timeline", "## Root cause", "## Resolution", "## Prevention",
                    "## Action items"):
        assert section in text, section
    assert "**Suspected, not confirmed** (confidence high): payments after deploy chg-1004" \
        in text
    assert "- 2026-11-20 10:40:00: deploy chg-1004 on payments" in text
    assert "- applied: rollback chg-1005 on payments at 2026-11-20T11:20:00Z" in text
    entry, _ = kb.parse_entry(d / "e2e-demo.md")
    assert entry.data["root_cause"]["state"] == "suspected"
    (run / "notes.yaml").write_text("root_cause: {confirmed: true, text: pool leak in v2.14}\n")
    text = kb.write_entry(Run(run), d).read_text()
    assert "**Confirmed by responders:** pool leak in v2.14" in text


def test_decoy_templates_of_untouched_services_are_not_symptoms(demo_run: Path) -> None:
    sym = kb.symptoms_of_run(Run(demo_run))
    cor = Run(demo_run).findings("correlation")
    elsewhere = [t["template"] for t in cor["templates"]
                 if t["service"] not in sym["services"] and t["status"] in ("new", "surging")]
    assert not set(elsewhere) & set(sym["templates"])
    flag = [t["template"] for t in cor["templates"] if t["level"] == "info"
            and t["status"] == "surging"]
    assert flag and not set(flag) & set(sym["templates"])  # the decoy flag's info lines
    assert POOL_TEMPLATE in sym["templates"]


def test_a_rerun_of_the_same_incident_is_not_a_repeat_of_itself(demo_run: Path,
                                                               tmp_path: Path) -> None:
    d = tmp_path / "kb"
    kb.write_entry(Run(demo_run), d)  # the first run, now in the KB
    rerun = _copy_run(demo_run, tmp_path / "rerun", ("triage", "correlation"))
    inc = json.loads((rerun / "incident.json").read_text())
    (rerun / "incident.json").write_text(json.dumps({**inc, "id": "rerun"}))
    sim = kb.similar_incidents(Run(rerun), d)
    assert demo_run.name not in set(sim["incident_id"])
