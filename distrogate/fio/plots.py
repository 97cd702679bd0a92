"""Plots a person would rather look at than read: per job, the two samples of every metric
side by side (a box plot with each run as a point over it), titled with the ratio of medians,
its interval and the status. SVG from matplotlib (Agg, no display), text kept as text,
deterministic (the same samples give the same bytes): the report embeds them as images and
they work offline.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from distrogate.differential import DeltaStatus, Sample
from distrogate.differential.numeric import Effect

_COLOURS = {"baseline": "#5b6470", "candidate": "#2b6cb0"}
_STATUS_COLOURS = {DeltaStatus.REGRESSION: "#b3261e", DeltaStatus.INCONCLUSIVE: "#b36b00",
                   DeltaStatus.UNCHANGED: "#1f7a3a", DeltaStatus.WITHIN_NOISE: "#1d232b"}


@dataclass(frozen=True)
class Panel:
    """One metric of a job: its two samples and how they were judged."""

    metric: str
    title: str
    baseline: Sample
    candidate: Sample
    effect: Effect | None
    status: DeltaStatus


def caption(panel: Panel) -> str:
    """``ratio 0.55 (-45.0 %) CI [0.50, 0.61]`` and the status, as a panel's subtitle."""
    if panel.effect is None:
        return str(panel.status)
    e = panel.effect
    return (f"ratio {e.ratio:.3f} ({(e.ratio - 1) * 100:+.1f} %)\n"
            f"CI [{e.low:.3f}, {e.high:.3f}] · {panel.status}")


def _jitter(count: int, centre: float) -> list[float]:
    """Fixed, evenly spread offsets (deterministic; no random jitter)."""
    if count <= 1:
        return [centre] * count
    return [centre - 0.12 + 0.24 * i / (count - 1) for i in range(count)]


def job_svg(job: str, title: str, panels: Sequence[Panel]) -> str:
    """One SVG figure for ``job``: a panel per metric (see the module)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "distrogate",
                                "font.size": 8, "axes.titlesize": 8}):
        figure = Figure(figsize=(2.3 * max(1, len(panels)), 2.9), layout="constrained")
        axes = figure.subplots(1, max(1, len(panels)), squeeze=False)[0]
        for ax, panel in zip(axes, panels, strict=False):
            data = [list(panel.baseline.values), list(panel.candidate.values)]
            box = ax.boxplot(data, positions=[1, 2], widths=0.5, showfliers=False,
                             patch_artist=True, medianprops={"color": "#1d232b"})
            for patch, role in zip(box["boxes"], ("baseline", "candidate"), strict=True):
                patch.set_facecolor(_COLOURS[role] + "33")
                patch.set_edgecolor(_COLOURS[role])
            for position, (values, role) in enumerate(zip(data, ("baseline", "candidate"),
                                                          strict=True), start=1):
                ax.scatter(_jitter(len(values), position), values, s=12, zorder=3,
                           color=_COLOURS[role])
            ax.set_xticks([1, 2], ["baseline", "candidate"])
            ax.set_ylabel(panel.baseline.unit or panel.candidate.unit)
            ax.set_title(f"{panel.title}\n{caption(panel)}",
                         color=_STATUS_COLOURS.get(panel.status, "#1d232b"))
            ax.grid(axis="y", alpha=0.3)
        figure.suptitle(f"{job}: {title}", fontsize=9)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()
