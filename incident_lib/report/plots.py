"""Golden-signal plots with onset and change markers (matplotlib, Agg).

One colour per service in every panel (and every plot of a run: colours follow the sorted
service names); change and onset labels sit in a strip above the panels, staggered so they
never overlap each other or the data.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..core.storage import atomic_write_with  # noqa: E402

__all__ = ["plot_golden_signals", "service_colors"]

PANELS = [("error_rate", "Errors: share of requests answered 5xx", 100.0, "%"),
          ("latency_p99", "Latency: p99", 1.0, "seconds"),
          ("traffic", "Traffic", 1.0, "requests/s"),
          ("db_pool_utilization", "Saturation: DB pool in use", 100.0, "% of max")]
LABEL_GAP = 0.09  # labels closer than this share of the x range go on different rows


def service_colors(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """A fixed colour per service: tab10 (then tab20) in sorted order of every service seen."""
    names: set[str] = set()
    for df in frames.values():
        if df is not None and not df.empty and "service" in df:
            names.update(str(s) for s in df["service"].unique())
    palette = [*plt.get_cmap("tab10").colors, *plt.get_cmap("tab20").colors[1::2]]
    return {s: matplotlib.colors.to_hex(palette[i % len(palette)])
            for i, s in enumerate(sorted(names))}


def _rows(xs: list[float], span: float) -> list[int]:
    """Greedy row per label (sorted by x) so labels on a row are LABEL_GAP x span apart."""
    last: list[float] = []
    out = []
    for x in xs:
        for i, end in enumerate(last):
            if x - end >= LABEL_GAP * span:
                last[i] = x
                out.append(i)
                break
        else:
            last.append(x)
            out.append(len(last) - 1)
    return out


def _stack(fig, strip, texts) -> None:  # noqa: ANN001 - matplotlib objects
    """Move each label to the first row where its drawn box overlaps no other label."""
    if not texts:
        strip.set_ylim(1, 0)
        return
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed: list[list[tuple[float, float]]] = []
    rows = []
    for t in texts:
        box = t.get_window_extent(renderer)
        lo, hi = box.x0 - 4, box.x1 + 4
        for i, row in enumerate(placed):
            if all(hi <= a or lo >= b for a, b in row):
                row.append((lo, hi))
                rows.append(i)
                break
        else:
            placed.append([(lo, hi)])
            rows.append(len(placed) - 1)
    for t, row in zip(texts, rows, strict=True):
        t.xy = t.xyann = (t.xy[0], row + 0.5)
    strip.set_ylim(len(placed), 0)


def plot_golden_signals(
    frames: dict[str, pd.DataFrame],
    services: list[str],
    onset: pd.Timestamp | None,
    changes: pd.DataFrame,
    out: Path,
    title: str,
):
    """Four panels (errors, latency, traffic, saturation) for `services`; saves a PNG."""
    marks: list[tuple[pd.Timestamp, str, str]] = []
    if changes is not None and not changes.empty:
        for r in changes.itertuples():
            color = "purple" if r.type in ("deploy", "rollback") else "dimgrey"
            marks.append((pd.Timestamp(r.time), f"{r.type} {r.id} ({r.service})", color))
    if onset is not None:
        marks.append((pd.Timestamp(onset), "onset", "red"))
    marks.sort(key=lambda m: m[0])
    times = [t for df in frames.values() if df is not None and not df.empty
             for t in (df["time"].min(), df["time"].max())]
    t0, t1 = (min(times), max(times)) if times else (None, None)
    span = (t1 - t0).total_seconds() if t0 is not None else 1.0
    rows = _rows([(m[0] - t0).total_seconds() if t0 is not None else 0.0 for m in marks],
                 span or 1.0)
    n_rows = max(rows, default=-1) + 1
    fig, axes = plt.subplots(5, 1, figsize=(11, 10.5 + 0.25 * n_rows), sharex=True,
                             constrained_layout=True,
                             gridspec_kw={"height_ratios": [0.35 + 0.3 * n_rows, 3, 3, 3, 3]})
    strip, panels = axes[0], axes[1:]
    colors = service_colors(frames)
    for ax, (sig, label, mult, unit) in zip(panels, PANELS, strict=True):
        df = frames.get(sig)
        if sig == "db_pool_utilization" and (df is None or df.empty):
            sig, label, mult, unit = "cpu", "Saturation: CPU", 1.0, "cores"
            df = frames.get(sig)
        if df is None or df.empty:
            ax.text(0.5, 0.5, f"no data for {sig}", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            for svc, g in df.groupby("service"):
                if services and svc not in services and sig != "db_pool_utilization":
                    continue
                ax.plot(g["time"], g["value"] * mult, label=str(svc), linewidth=1.2,
                        color=colors.get(str(svc)))
            ax.legend(loc="upper left", fontsize=8, ncol=5)
        ax.set_ylabel(unit)
        ax.set_title(label, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        for when, _text, color in marks:
            ax.axvline(when, color=color, linestyle="--" if color == "red" else ":",
                       linewidth=1.2 if color == "red" else 1)
    strip.set_axis_off()
    if t0 is not None:
        strip.set_xlim(t0, t1)
    texts = []
    for when, text, color in marks:
        late = t0 is not None and (when - t0).total_seconds() > 0.8 * (span or 1.0)
        texts.append(strip.annotate(
            text, (when, 0.5), xycoords="data", fontsize=8, color=color,
            ha="right" if late else "left", va="center", clip_on=False,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": color, "lw": 0.6}))
        strip.axvline(when, color=color, linestyle=":", linewidth=0.8)
    _stack(fig, strip, texts)
    panels[-1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    panels[-1].set_xlabel("time (UTC)")
    fig.suptitle(title if onset is not None else f"{title} (no onset measured)", fontsize=12)
    atomic_write_with(out, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    return fig
