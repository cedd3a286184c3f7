"""Incident metrics over a knowledge base: MTTD, MTTA, MTTR, frequency, repeats, prevention."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..core.errors import InputError
from ..core.safe import md_inline, md_table
from ..core.storage import atomic_write_text
from ..report.render import fmt_duration, fmt_pct
from .entries import DONE, _seconds, kb_root, load_kb

if TYPE_CHECKING:
    import pandas as pd

    from .entries import KBEntry

__all__ = ["incident_table", "compute_stats", "write_stats"]

# --- metrics -------------------------------------------------------------------------------


def incident_table(entries: list[KBEntry]) -> pd.DataFrame:
    """One row per incident: times, MTTD/MTTA/MTTR inputs, repeat flag, action-item counts."""

    rows = []
    for e in entries:
        d = e.data
        items = [a for a in d.get("action_items") or [] if isinstance(a, dict)]
        done = sum(str(a.get("status") or "open").lower() in DONE for a in items)
        end = d.get("mitigated") or d.get("resolved")
        rows.append({
            "incident_id": e.id, "severity": str(d.get("severity")),
            "services": ";".join(map(str, d.get("services") or [])),
            "started": d.get("started"), "detected": d.get("detected"),
            "acknowledged": d.get("acknowledged"), "mitigated": d.get("mitigated"),
            "resolved": d.get("resolved"),
            "ttd_s": _seconds(d.get("started"), d.get("detected")),
            "tta_s": _seconds(d.get("detected"), d.get("acknowledged")),
            "ttr_s": _seconds(d.get("started"), end),
            "repeat_of": d.get("repeat_of") or "", "action_items": len(items),
            "action_items_done": done})
    return pd.DataFrame(rows)


def _mean(s: pd.Series) -> float | None:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.mean()) if len(s) else None


def compute_stats(entries: list[KBEntry]) -> dict[str, Any]:
    """MTTD/MTTA/MTTR, frequency by severity/service/month, repeat rate, action completion."""

    t = incident_table(entries)
    if t.empty:
        return {"incidents": 0, "table": t}
    n = len(t)
    items, done = int(t["action_items"].sum()), int(t["action_items_done"].sum())
    services = t["services"].str.split(";").explode()
    months = pd.to_datetime(t["started"], utc=True).dt.strftime("%Y-%m")
    by_sev = t.groupby("severity").agg(incidents=("incident_id", "size"),
                                       mttr_s=("ttr_s", "mean")).reset_index()
    return {
        "incidents": n,
        "mttd_s": _mean(t["ttd_s"]), "mtta_s": _mean(t["tta_s"]), "mttr_s": _mean(t["ttr_s"]),
        "repeats": int((t["repeat_of"] != "").sum()),
        "repeat_rate": float((t["repeat_of"] != "").sum() / n),
        "action_items": items, "action_items_done": done,
        "prevention_rate": done / items if items else None,
        "by_severity": by_sev,
        "by_service": services[services != ""].value_counts().rename_axis("service")
        .rename("incidents").reset_index().sort_values(["incidents", "service"],
                                                       ascending=[False, True],
                                                       kind="stable").reset_index(drop=True),
        "by_month": months.value_counts().sort_index().rename_axis("month")
        .rename("incidents").reset_index(),
        "table": t,
    }


def _plots(stats: dict[str, Any], out: Path) -> list[str]:
    import matplotlib  # imported on use: the KB stats command is the only caller

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, col, title in ((axes[0], "by_severity", "severity", "Incidents by severity"),
                                (axes[1], "by_service", "service", "Incidents by service"),
                                (axes[2], "by_month", "month", "Incidents per month")):
        df = stats[key]
        ax.bar(df[col].astype(str), df["incidents"], color="#4c72b0")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(out / "frequency.png", dpi=90)
    plt.close(fig)
    names.append("frequency.png")
    df = stats["by_severity"]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.bar(df["severity"], (df["mttr_s"] / 60).fillna(0), color="#dd8452")
    ax.set_title("MTTR by severity (minutes)")
    fig.tight_layout()
    fig.savefig(out / "mttr_by_severity.png", dpi=90)
    plt.close(fig)
    names.append("mttr_by_severity.png")
    return names


def write_stats(kb_dir: str | Path | None = None, out: str | Path | None = None
                ) -> tuple[Path, dict[str, Any], list[str]]:
    """Write stats.md, stats.csv, incidents.csv and plots; return (stats.md, stats, problems)."""


    base = kb_root(kb_dir)
    entries, problems = load_kb(base)
    if not entries:
        raise InputError(f"no valid KB entries in {base}: add some with `incident kb add RUN`")
    stats = compute_stats(entries)
    out = Path(out) if out else base / "stats"
    out.mkdir(parents=True, exist_ok=True)
    rows = [("incidents", "all", stats["incidents"]), ("mttd_s", "all", stats["mttd_s"]),
            ("mtta_s", "all", stats["mtta_s"]), ("mttr_s", "all", stats["mttr_s"]),
            ("repeat_rate", "all", stats["repeat_rate"]),
            ("prevention_rate", "all", stats["prevention_rate"])]
    rows += [("incidents", f"severity={r.severity}", r.incidents)
             for r in stats["by_severity"].itertuples()]
    rows += [("mttr_s", f"severity={r.severity}", r.mttr_s)
             for r in stats["by_severity"].itertuples()]
    rows += [("incidents", f"service={r.service}", r.incidents)
             for r in stats["by_service"].itertuples()]
    rows += [("incidents", f"month={r.month}", r.incidents)
             for r in stats["by_month"].itertuples()]
    csv = pd.DataFrame(rows, columns=["metric", "group", "value"])
    atomic_write_text(out / "stats.csv", csv.to_csv(index=False))
    atomic_write_text(out / "incidents.csv", stats["table"].to_csv(index=False))
    plots = _plots(stats, out)
    sev = stats["by_severity"].assign(mttr=stats["by_severity"]["mttr_s"].map(fmt_duration))
    md = [f"# Incident metrics ({stats['incidents']} incidents)", "",
          f"_From {md_inline(base)}; {len(problems)} bad file(s) skipped._", "",
          "| Metric | Value |", "|---|---|",
          f"| MTTD (detected - started) | {fmt_duration(stats['mttd_s'])} |",
          f"| MTTA (acknowledged - detected) | {fmt_duration(stats['mtta_s'])} |",
          f"| MTTR (mitigated - started) | {fmt_duration(stats['mttr_s'])} |",
          f"| Repeat incidents | {stats['repeats']} ({fmt_pct(stats['repeat_rate'])}) |",
          f"| Action items done (prevention rate) | {stats['action_items_done']} of "
          f"{stats['action_items']} ({fmt_pct(stats['prevention_rate'])}) |", "",
          "## By severity", "", md_table(sev, ["severity", "incidents", "mttr"]),
          "## By service", "", md_table(stats["by_service"], max_rows=50),
          "## By month", "", md_table(stats["by_month"], max_rows=60),
          *[f"![{p}]({p})\n" for p in plots]]
    if problems:
        md += ["## Skipped files", "", *[f"- {md_inline(p)}" for p in problems]]
    path = out / "stats.md"
    atomic_write_text(path, "\n".join(md) + "\n")
    return path, stats, problems





