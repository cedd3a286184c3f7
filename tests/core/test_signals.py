"""Signals are data; label values reach PromQL only as quoted literals."""

from __future__ import annotations

import pytest

from incident_lib.core.errors import InputError
from incident_lib.core.signals import get_signal, promql_string, render_promql, selector, signals


def test_every_signal_has_both_definitions() -> None:
    for name, sig in signals().items():
        assert sig.promql and sig.files, name
        assert "<<sel>>" in sig.promql


def test_metacharacters_stay_inside_the_literal() -> None:
    hostile = '"} or vector(1) #'
    lit = promql_string(hostile)
    assert lit == '"\\"} or vector(1) #"'
    q = render_promql(get_signal("traffic"), {"service": hostile})
    assert q == ('sum by (service) (rate(http_requests_total{service="\\"} or vector(1) #"}'
                 '[1m]))')


def test_backslash_newline_escaped() -> None:
    assert promql_string('a\\b\nc') == '"a\\\\b\\nc"'


def test_bad_label_name_rejected() -> None:
    with pytest.raises(InputError, match="label name"):
        selector({"service} or": "x"})
