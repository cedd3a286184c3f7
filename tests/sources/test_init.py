"""Building a backend from an incident's `sources`: a missing or kind-less entry is one clear
error naming the field, never an AttributeError."""

from __future__ import annotations

import pytest

from incident_lib.core.errors import InputError
from incident_lib.sources import make_log_source, make_metric_source


def test_a_missing_source_names_the_field_and_the_kinds() -> None:
    with pytest.raises(InputError, match=r"^sources\.metrics is missing in the incident: "
                                         r"declare it with a kind \(.*files.*\)$"):
        make_metric_source(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^sources\.logs\.kind is missing"):
        make_log_source({"path": "logs.ndjson"})
