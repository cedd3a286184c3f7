"""The notify: and links: sections of incident.yaml: a bad entry fails at load, naming the field
(a webhook URL written in the file is refused: it is a secret)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from incident_lib.core.config import load_config
from incident_lib.core.errors import ConfigError
from incident_lib.core.integrations import validate_links


@pytest.mark.parametrize(("notify", "field"), [
    ([{"kind": "slack", "url": "https://hooks.slack.com/services/T/B/x"}], "notify[1]"),
    ([{"kind": "irc", "url_env": "X"}], "notify[1].kind"),
    ([{"kind": "slack", "url_env": "not a var"}], "notify[1].url_env"),
    ([{"kind": "mattermost", "url_env": "X", "format": "blocks"}], "notify[1].format"),
    ([{"kind": "webhook", "url_env": "X", "events": ["started"]}], "notify[1].events"),
])
def test_bad_notify_config_names_the_field(tmp_path: Path, notify: list, field: str) -> None:
    f = tmp_path / "incident.yaml"
    f.write_text(json.dumps({"sources": {}, "notify": notify}))
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_config(f)


@pytest.mark.parametrize(("links", "field"), [
    ({"grafana": {"url": "https://admin:pw@g.example.com", "datasource": "p"}},
     "links.grafana.url"),
    ({"grafana": {"url": "https://g.example.com"}}, "links.grafana.datasource"),
    ({"kibana": {"url": "ftp://k", "data_view": "x"}}, "links.kibana.url"),
    ({"prometheus": {"url": "https://p?token=x"}}, "links.prometheus.url"),
    ({"loki": {"url": "https://l"}}, "links.loki"),
])
def test_bad_links_config_names_the_field(links: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(field)):
        validate_links(links)
