"""How well a template miner groups and writes templates: loghub GA and PA."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

VAR = "<*>"

__all__ = ["group_accuracy", "parsing_accuracy"]


def group_accuracy(predicted: Sequence[object], truth: Sequence[object]) -> float:
    """Loghub group accuracy: share of lines whose predicted group equals their true group."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have the same length")
    if not predicted:
        return 1.0
    truth_sizes = Counter(truth)
    pred_groups: dict[object, list[int]] = {}
    for i, p in enumerate(predicted):
        pred_groups.setdefault(p, []).append(i)
    correct = 0
    for members in pred_groups.values():
        labels = {truth[i] for i in members}
        if len(labels) != 1:
            continue
        (label,) = labels
        if truth_sizes[label] == len(members):
            correct += len(members)
    return correct / len(predicted)


_WS = re.compile(r"\s+")
_RUNS = re.compile(r"<\*>(?:\s+<\*>)+")


def _norm_template(template: str) -> str:
    return _RUNS.sub(VAR, _WS.sub(" ", template).strip())


def parsing_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """Parsing accuracy (PA): share of lines whose predicted template text equals the true one
    (whitespace runs and runs of adjacent '<*>' normalised on both sides)."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have the same length")
    if not predicted:
        return 1.0
    ok = sum(_norm_template(p) == _norm_template(t) for p, t in zip(predicted, truth, strict=True))
    return ok / len(predicted)
