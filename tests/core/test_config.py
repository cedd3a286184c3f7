"""Config is validated when it is loaded: a bad severity policy or source kind is one clear
ConfigError naming the file, the rule and the field, before any run exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from incident_lib.core.config import load_config, validate_severity_policy
from incident_lib.core.errors import ConfigError, InputError
from incident_lib.pipeline.alerts import incident_from_cli


def _write(tmp: Path, **extra: object) -> Path:
    cfg = {"sources": {k: {"kind": "files", "path": "."} for k in ("metrics", "logs",
                                                                   "changes")}, **extra}
    p = tmp / "incident.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.parametrize(("policy", "needle"), [
    ([{"level": "P9"}], "rule 1: severity 'P9' is unknown"),
    ([{"level": "P1"}, {"level": "P2", "error_share": 0.1}], "rule 2: unknown condition"),
    ([{"level": "P1", "customer_error_share_min": "lots"}], "must be a number"),
    ([{"customer_error_share_min": 0.1}], "rule 1 needs a level"),
    ({"level": "P1"}, "must be a non-empty list"),
])
def test_bad_severity_policy_is_refused_at_load(tmp_path: Path, policy: object,
                                                needle: str) -> None:
    path = _write(tmp_path, severity_policy=policy)
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(path)
    assert str(path) in str(err.value) and isinstance(err.value, InputError)


def test_unknown_source_kind_is_refused_at_load(tmp_path: Path) -> None:
    path = _write(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    cfg["sources"]["logs"]["kind"] = "splunk"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="sources.logs.kind is 'splunk'"):
        load_config(path)


def test_policy_travels_in_its_own_field_not_in_the_topology(demo_data: Path,
                                                             tmp_path: Path) -> None:
    cfg = load_config(data_dir=demo_data)
    cfg["severity_policy"] = validate_severity_policy([{"level": "P2"}])
    inc = incident_from_cli("payments", "2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", cfg)
    assert inc.severity_policy == [{"level": "P2"}]
    assert "severity_policy" not in inc.topology
