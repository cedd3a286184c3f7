"""Ids and atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident_lib.core.errors import InputError
from incident_lib.core.storage import (
    atomic_write_text,
    atomic_write_with,
    slug,
    validate_incident_id,
)


@pytest.mark.parametrize("bad", ["../x", "a/b", "{x}", "a..b", "A", "-x", "x" * 81, "a\x00",
                                 "", " x"])
def test_bad_ids(bad: str) -> None:
    with pytest.raises(InputError):
        validate_incident_id(bad)


def test_slug_makes_untrusted_labels_safe() -> None:
    assert slug("../../etc/{passwd}") == "etc-passwd"
    assert slug("\x00") == "x"


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    atomic_write_text(f, '{"good": true}')

    def boom(tmp: Path) -> None:
        tmp.write_text('{"trunc')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write_with(f, boom)
    assert f.read_text() == '{"good": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
