"""Loghub group accuracy (GA) and parsing accuracy (PA)."""

from __future__ import annotations

import pytest

from incident_lib.analysis.template_accuracy import group_accuracy, parsing_accuracy


def test_group_accuracy() -> None:
    truth = ["a", "a", "b", "c", "c"]
    assert group_accuracy(["x", "x", "y", "z", "z"], truth) == 1.0
    assert group_accuracy(["x", "x", "x", "z", "z"], truth) == pytest.approx(0.4)
    assert group_accuracy(["x", "w", "y", "z", "z"], truth) == pytest.approx(0.6)
    assert group_accuracy([], []) == 1.0
    with pytest.raises(ValueError, match="same length"):
        group_accuracy(["x"], [])


def test_parsing_accuracy_compares_template_text() -> None:
    truth = ["Invalid user <*> from <*>", "send <*> <*> bytes", "done in  <*>"]
    # runs of '<*>' and whitespace are normalised on both sides; anything else must be equal
    assert parsing_accuracy(["Invalid user <*> from <*>", "send <*> bytes", "done in <*>"],
                            truth) == 1.0
    assert parsing_accuracy(["Invalid user bob from <*>", "send <*> bytes", "<*>"],
                            truth) == pytest.approx(1 / 3)
