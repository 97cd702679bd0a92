"""The fio suite's settings: defaults per profile, and one-line errors naming the key."""

from __future__ import annotations

import pytest

from distrogate.errors import InputError
from distrogate.fio.jobs import JOBS, METRICS, job_file_sections
from distrogate.fio.settings import FioSettings, parse
from distrogate.suites import find_suite

WHERE = "suites.fio"


def test_defaults_are_the_quick_profile_with_every_job_and_metric() -> None:
    settings = parse({}, {}, WHERE)
    assert settings == FioSettings()
    assert settings.jobs == tuple(JOBS) and settings.metrics == tuple(METRICS)
    assert (settings.runs, settings.runtime, settings.ramp) == (6, 1, 1)


def test_nightly_profile_from_policy_or_option() -> None:
    assert parse({"profile": "nightly"}, {}, WHERE).runs == 9
    chosen = parse({"profile": "quick"}, {"fio_profile": "nightly"}, WHERE)
    assert (chosen.profile, chosen.runs, chosen.runtime) == ("nightly", 9, 10)
    assert parse({"profile": "nightly", "runs": 12}, {}, WHERE).runs == 12


def test_selected_jobs_and_metrics_keep_the_job_file_order() -> None:
    settings = parse({"jobs": ["seqwrite-128k", "randread-4k-qd1"], "metrics": ["clat_p99", "iops"]},
                     {}, WHERE)
    assert settings.jobs == ("randread-4k-qd1", "seqwrite-128k")
    assert settings.metrics == ("iops", "clat_p99")


def test_every_job_is_a_section_of_the_shipped_job_file() -> None:
    assert job_file_sections() == list(JOBS)


@pytest.mark.parametrize(("raw", "problem"), [
    ({"jobs": ["randread-4k-qd64"]}, "suites.fio.jobs: unknown job 'randread-4k-qd64'"),
    ({"metrics": ["iops", "clat_p95"]}, "suites.fio.metrics: unknown metric 'clat_p95'"),
    ({"jobs": []}, "suites.fio.jobs: expected a non-empty list"),
    ({"threshold": 0}, "suites.fio.threshold: expected a fraction strictly between 0 and 1"),
    ({"threshold": 1}, "suites.fio.threshold: expected a fraction strictly between 0 and 1"),
    ({"threshold": 10}, "suites.fio.threshold: expected a fraction strictly between 0 and 1"),
    ({"threshold": -0.1}, "suites.fio.threshold: expected a fraction"),
    ({"threshold": True}, "suites.fio.threshold: expected a fraction"),
    ({"alpha": 1.5}, "suites.fio.alpha: expected a fraction"),
    ({"runs": 3}, "suites.fio.runs: expected a whole number from 5 to 50, got 3"),
    ({"runtime": 0}, "suites.fio.runtime: expected a whole number"),
    ({"profile": "weekly"}, "suites.fio.profile: unknown profile 'weekly'"),
    ({"order": "random"}, "suites.fio.order: unknown order 'random'"),
    ({"thresold": 0.2}, "suites.fio: unknown key 'thresold'"),
    ({"confirm": "yes"}, "suites.fio.confirm: expected true or false, got 'yes'"),
])
def test_bad_settings_are_one_line_naming_the_key(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InputError) as info:
        parse(raw, {}, WHERE)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_the_registry_parses_the_fio_section() -> None:
    suite = find_suite("fio")
    assert suite is not None
    assert isinstance(suite.parse_settings({"threshold": 0.2}), FioSettings)
    with pytest.raises(InputError, match="unknown metric"):
        suite.parse_settings({"metrics": ["latency"]})


def test_confirmation_runs_are_on_by_default_and_can_be_turned_off() -> None:
    assert parse({}, {}, WHERE).confirm is True
    assert parse({"confirm": False}, {}, WHERE).confirm is False
