"""`reference: {start, end}` in incident.yaml: validated at load, travels into incident.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident_lib.core.config import load_config, resolve_sources
from incident_lib.core.errors import ConfigError

SOURCES = "sources:\n  metrics: {kind: files, path: m.om}\n  logs: {kind: files, path: l.ndjson}\n"


def _write(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "incident.yaml"
    p.write_text(SOURCES + extra, "utf-8")
    return p


def test_reference_is_read_as_utc_times_and_reaches_the_topology(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "reference: {start: '2023-01-29 08:49:09', "
                                       "end: '2023-01-29T08:50:08Z'}\n"))
    assert cfg["reference"] == {"start": "2023-01-29T08:49:09+00:00",
                                "end": "2023-01-29T08:50:08+00:00"}
    _, topo = resolve_sources(cfg)
    assert topo["reference"] == cfg["reference"]


@pytest.mark.parametrize(("text", "field"), [
    ("reference: yesterday\n", "reference must be"),
    ("reference: {start: '2023-01-29T09:00:00Z'}\n", "reference must be"),
    ("reference: {start: 'noon', end: '2023-01-29T09:00:00Z'}\n", "reference.start"),
    ("reference: {start: '2023-01-29T09:00:00Z', end: '2023-01-29T08:00:00Z'}\n",
     "reference.start must be before"),
])
def test_bad_reference_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field) as exc:
        load_config(_write(tmp_path, text))
    assert "\n" not in str(exc.value)


def test_path_may_list_several_globs(tmp_path: Path) -> None:
    p = _write(tmp_path, "").read_text("utf-8").replace(
        "path: l.ndjson", "path: [a/*.ndjson, b/*.ndjson]")
    (tmp_path / "incident.yaml").write_text(p, "utf-8")
    sources, _ = resolve_sources(load_config(tmp_path / "incident.yaml"))
    assert sources["logs"]["path"] == [str(tmp_path / "a/*.ndjson"), str(tmp_path / "b/*.ndjson")]
