"""Interleaved runs and the samples they give, from real parsed fio output."""

from __future__ import annotations

from pathlib import Path

from distrogate.fio.calibrate import Repetition, judge_all, summarise
from distrogate.fio.guest import MeasuredRun
from distrogate.fio.parse import FioResult, parse_output
from distrogate.fio.schedule import plan, samples
from distrogate.fio.settings import FioSettings

DATA = Path(__file__).resolve().parent / "data" / "fio" / "fio-3.33-all-jobs.json"


def _scaled(result: FioResult, factor: float) -> FioResult:
    return FioResult(result.version, result.engine,
                     {job: {m: v * factor for m, v in metrics.items()}
                      for job, metrics in result.jobs.items()})


def _runs(base_factors: list[float], cand_factors: list[float]) -> list[MeasuredRun]:
    real = parse_output(DATA.read_text())
    runs = []
    for index, (b, c) in enumerate(zip(base_factors, cand_factors, strict=True)):
        runs.append(MeasuredRun("baseline", index, 0.0, 1.0, 20.0, "", _scaled(real, b)))
        runs.append(MeasuredRun("candidate", index, 0.0, 1.0, 20.0, "", _scaled(real, c)))
    return runs


def test_runs_alternate_baseline_and_candidate() -> None:
    assert plan(3) == [(0, "baseline"), (0, "candidate"), (1, "baseline"), (1, "candidate"),
                       (2, "baseline"), (2, "candidate")]


def test_a_sample_holds_one_side_s_runs_in_order_with_the_metric_s_unit() -> None:
    runs = _runs([1.0, 1.1, 0.9], [0.5, 0.6, 0.4])
    real = parse_output(DATA.read_text()).jobs["seqread-128k"]["bw"]
    base = samples(runs, "baseline", "seqread-128k", "bw", note="io_uring")
    assert base.values == (real, real * 1.1, real * 0.9)
    assert base.unit == "KiB/s" and base.note == "io_uring"
    assert samples(runs, "candidate", "randread-4k-qd1", "clat_p99").unit == "µs"


def test_a_uniform_slowdown_is_a_regression_of_throughput_and_latency_alike() -> None:
    """Throughput halved (the same factor on latency would be an improvement): the throughput
    metrics regress, the latencies (scaled down too) do not."""
    factors = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0]
    runs = _runs(factors, [f * 0.5 for f in factors])
    settings = FioSettings(jobs=("seqread-128k",))
    judged = {j.metric: j.status for j in judge_all(runs, settings)}
    assert judged["iops"] == judged["bw"] == "regression"
    assert judged["clat_p99"] == "unchanged"  # lower latency: better, not a regression


def test_calibration_figures_count_false_positives_and_inconclusives() -> None:
    factors = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0]
    settings = FioSettings(jobs=("seqread-128k", "randread-4k-qd1"))
    same = Repetition(judge_all(_runs(factors, factors), settings), [])
    shifted = Repetition(judge_all(_runs(factors, [f * 0.5 for f in factors]), settings), [])
    figures = summarise([same, shifted], settings)
    assert figures["deltas"] == 20
    assert figures["false_positives"] == 4  # iops and bw of both jobs in the shifted one
    assert figures["runs_with_a_false_reject"] == 1
    assert figures["false_positive_rate"] == 4 / 20
    assert figures["median_cv"]["seqread-128k:bw"] < 0.02
