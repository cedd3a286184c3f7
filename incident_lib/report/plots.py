"""Golden-signal plots with onset and change markers (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..core.signals import signals as signal_defs  # noqa: E402
from ..core.storage import atomic_write_with  # noqa: E402

__all__ = ["plot_golden_signals"]

PANELS = [("error_rate", "Errors: 5xx share", 100.0, "%"),
          ("latency_p99", "Latency: p99", 1.0, "seconds"),
          ("traffic", "Traffic", 1.0, "requests/s"),
          ("db_pool_utilization", "Saturation: DB pool in use", 100.0, "% of max")]


def plot_golden_signals(
    frames: dict[str, pd.DataFrame],
    services: list[str],
    onset: pd.Timestamp | None,
    changes: pd.DataFrame,
    out: Path,
    title: str,
):
    """Four panels (errors, latency, traffic, saturation) for `services`; saves a PNG."""
    fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True, constrained_layout=True)
    defs = signal_defs()
    for ax, (sig, label, mult, unit) in zip(axes, PANELS, strict=True):
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
                ax.plot(g["time"], g["value"] * mult, label=str(svc), linewidth=1.2)
            ax.legend(loc="upper left", fontsize=8, ncol=5)
        ax.set_ylabel(unit)
        ax.set_title(f"{label} ({defs[sig].title if sig in defs else sig})", fontsize=10)
        ax.grid(alpha=0.3)
        if onset is not None:
            ax.axvline(onset, color="red", linestyle="--", linewidth=1.2)
        if changes is not None and not changes.empty:
            for r in changes.itertuples():
                color = "purple" if r.type in ("deploy", "rollback") else "grey"
                ax.axvline(r.time, color=color, linestyle=":", linewidth=1)
    top = axes[0]
    if onset is not None:
        top.annotate("onset", (onset, 1.0), xycoords=("data", "axes fraction"), color="red",
                     fontsize=8, ha="left", va="bottom")
    if changes is not None and not changes.empty:
        for r in changes.itertuples():
            top.annotate(f"{r.id} {r.service} {r.type}", (r.time, 0.98),
                         xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                         va="top", ha="right", color="purple")
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    axes[-1].set_xlabel("time (UTC)")
    fig.suptitle(title, fontsize=12)
    atomic_write_with(out, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    return fig
