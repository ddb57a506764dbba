"""The drill's timeline picture: requests answered per region over time, with events marked."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt

from payments_dr.drill_report import DrillReport

# Event kinds drawn as vertical lines, with their colours.
EVENT_STYLES = {
    "fault": "#d62728",
    "detected": "#ff7f0e",
    "failover": "#2ca02c",
    "restore": "#1f77b4",
    "recovered": "#17becf",
    "failback": "#9467bd",
    "note": "#7f7f7f",
}
REGION_COLOURS = ("#1f77b4", "#2ca02c", "#8c564b")
UNANSWERED_COLOUR = "#7f7f7f"


def bucket_counts(
    report: DrillReport, bucket_seconds: float
) -> tuple[list[float], dict[str, list[int]]]:
    """Requests per bucket: answered ones by region, the rest under "" (no answer or 5xx)."""
    end = max((sample.at_seconds for sample in report.samples), default=0.0)
    buckets = max(1, math.ceil((end + 1e-9) / bucket_seconds))
    starts = [index * bucket_seconds for index in range(buckets)]
    series: dict[str, list[int]] = {}
    for sample in report.samples:
        answered = sample.region and sample.status < 500
        key = sample.region if answered else ""
        counts = series.setdefault(key, [0] * buckets)
        counts[min(buckets - 1, int(sample.at_seconds // bucket_seconds))] += 1
    return starts, series


def draw_timeline(report: DrillReport, path: Path | str, bucket_seconds: float = 5.0) -> Path:
    path = Path(path)
    starts, series = bucket_counts(report, bucket_seconds)
    figure, axes = plt.subplots(figsize=(11, 5.5), dpi=110)
    regions = sorted(key for key in series if key)
    for colour, region in zip(REGION_COLOURS, regions, strict=False):
        axes.step(
            starts,
            series[region],
            where="post",
            color=colour,
            linewidth=2,
            label=f"answered by {region}",
        )
    if "" in series:
        axes.step(
            starts,
            series[""],
            where="post",
            color=UNANSWERED_COLOUR,
            linewidth=1.5,
            linestyle="--",
            label="no answer or 5xx (retried)",
        )

    fault = next((e.at_seconds for e in report.timeline if e.kind == "fault"), None)
    restore = next((e.at_seconds for e in report.timeline if e.kind == "restore"), None)
    if fault is not None and restore is not None:
        axes.axvspan(fault, restore, color=EVENT_STYLES["fault"], alpha=0.08, label="fault active")
    top = max((max(counts) for counts in series.values()), default=1)
    for index, event in enumerate(e for e in report.timeline if e.kind in EVENT_STYLES):
        colour = EVENT_STYLES[event.kind]
        axes.axvline(event.at_seconds, color=colour, linestyle=":", linewidth=1.5)
        axes.annotate(
            event.kind,
            xy=(event.at_seconds, top * (1.12 - 0.09 * (index % 4))),
            xytext=(3, 0),
            textcoords="offset points",
            color=colour,
            fontsize=9,
            fontweight="bold",
        )

    kind = "SIMULATION - local lab" if report.simulated else report.environment
    axes.set_title(
        f"{kind}: drill '{report.scenario}', {report.consistency_mode} consistency\n"
        f"failover {_seconds(report.failover_seconds)}, failback"
        f" {_seconds(report.failback_seconds)}, payments lost {report.payments_lost},"
        f" stored twice {report.payments_duplicated}",
        fontsize=11,
    )
    clock = "simulated seconds" if report.simulated else "seconds"
    axes.set_xlabel(f"{clock} since traffic started")
    axes.set_ylabel(f"requests per {bucket_seconds:g} s")
    axes.set_ylim(0, top * 1.25 + 1)
    axes.set_xlim(0, max(starts[-1] + bucket_seconds, 1.0))
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=9, framealpha=0.9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def _seconds(value: float | None) -> str:
    return "not observed" if value is None else f"{value:.0f} s"
