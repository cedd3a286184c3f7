"""Golden-signal plot: one colour per service everywhere, readable titles, labels apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from incident_lib.report.plots import plot_golden_signals, service_colors

T0 = pd.Timestamp("2026-11-20T09:00Z")


def _frame(services: list[str], scale: float) -> pd.DataFrame:
    t = T0 + pd.to_timedelta(np.arange(240) * 30, "s")
    return pd.concat([pd.DataFrame({"time": t, "service": s, "value": scale * (i + 1)})
                      for i, s in enumerate(services)])


def test_colours_titles_and_labels(tmp_path: Path) -> None:
    frames = {"error_rate": _frame(["checkout", "payments"], 0.01),
              "latency_p99": _frame(["payments", "checkout", "frontend"], 0.1),
              "traffic": _frame(["frontend", "payments"], 10.0),
              "db_pool_utilization": _frame(["payments", "inventory"], 0.2)}
    # four changes within 6 minutes and the onset: their labels must not collide
    changes = pd.DataFrame([
        {"time": T0 + pd.Timedelta(minutes=m), "service": s, "type": "deploy", "id": f"c{m}"}
        for m, s in ((96, "frontend"), (98, "payments"), (100, "checkout"), (101, "inventory"))])
    out = tmp_path / "g.png"
    fig = plot_golden_signals(frames, ["checkout", "payments", "frontend"],
                              T0 + pd.Timedelta(minutes=102), changes, out, "Golden signals")
    assert out.stat().st_size > 20_000
    expected = service_colors(frames)
    seen: dict[str, set[str]] = {}
    for ax in fig.axes[1:]:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                seen.setdefault(line.get_label(), set()).add(line.get_color())
    assert seen and all(cols == {expected[s]} for s, cols in seen.items()), seen
    titles = [ax.get_title(loc="left") for ax in fig.axes[1:]]
    assert all(t and t.count("(") <= 1 for t in titles), titles  # no "Traffic (Traffic (...))"
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) == 5
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    fig_box = fig.bbox
    assert all(fig_box.x0 <= b.x0 and b.x1 <= fig_box.x1 + 1 for b in boxes)  # not clipped
