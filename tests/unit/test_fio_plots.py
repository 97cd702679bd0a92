"""The fio suite's plots: SVG a browser shows offline, one panel per metric, the ratio and
its interval in each panel's title, the same bytes for the same samples."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from distrogate.differential import DeltaStatus, Direction, Numeric, Sample
from distrogate.fio.plots import Panel, caption, job_svg

SVG = "{http://www.w3.org/2000/svg}"


def _panel(metric: str, base: list[float], cand: list[float]) -> Panel:
    rule = Numeric(direction=Direction.HIGHER_IS_BETTER, metrics=2)
    b, c = Sample.of(base, "IO/s"), Sample.of(cand, "IO/s")
    effect = rule.effect(b, c)
    return Panel(metric, metric, b, c, effect, rule.status_of(effect))


def test_a_job_plot_is_svg_with_a_panel_per_metric_and_the_ratio() -> None:
    rng = np.random.default_rng(0)
    base = list(1000 * rng.lognormal(0, 0.05, 6))
    cand = list(550 * rng.lognormal(0, 0.05, 6))
    panels = [_panel("iops", base, cand), _panel("bw", base, cand)]
    svg = job_svg("seqread-128k", "128k sequential read", panels)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    text = " ".join(t for t in root.itertext())
    assert "seqread-128k: 128k sequential read" in text
    assert text.count("regression") == 2
    assert "ratio 0." in text and "CI [" in text
    assert "<script" not in svg
    assert svg == job_svg("seqread-128k", "128k sequential read", panels)  # deterministic


def test_caption_names_ratio_percent_and_interval() -> None:
    panel = _panel("iops", [100, 101, 99, 100, 102], [50, 51, 49, 50, 52])
    assert panel.status is DeltaStatus.REGRESSION
    text = caption(panel)
    assert text.startswith("ratio 0.500 (-50.0 %)")
    assert "CI [0." in text and "regression" in text
    no_effect = Panel("iops", "iops", panel.baseline, panel.candidate, None,
                      DeltaStatus.INCONCLUSIVE)
    assert caption(no_effect) == "inconclusive"


@settings(max_examples=10, deadline=None)
@given(base=st.lists(st.floats(1, 1e6), min_size=5, max_size=10),
       factor=st.floats(0.2, 5.0))
def test_any_samples_give_a_well_formed_plot(base: list[float], factor: float) -> None:
    panel = _panel("iops", base, [v * factor for v in base])
    svg = job_svg("randread-4k-qd1", "4k random read", [panel])
    ET.fromstring(svg)
    assert f"ratio {panel.effect.ratio:.3f}" in svg  # type: ignore[union-attr]
