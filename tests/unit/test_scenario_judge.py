"""The roll-forward suite's pure parts: the far-longer rule, the collation comparison, the
settings and the image check (one-line input errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distrogate.differential import DeltaStatus, Value
from distrogate.errors import InputError
from distrogate.scenario.checks import as_of_read, collation_versions
from distrogate.scenario.history import Status, Write, check_keys
from distrogate.scenario.judge import FarLonger
from distrogate.scenario.runner import ScenarioRun, StepResult
from distrogate.scenario.settings import SCENARIOS_DIR, parse


@given(control=st.floats(0.1, 1000), real=st.floats(0.1, 5000))
def test_far_longer_is_a_regression_exactly_past_the_bound(control: float, real: float) -> None:
    rule = FarLonger(3.0, 30.0)
    status = rule.decide(Value(control), Value(real)).status
    assert (status is DeltaStatus.REGRESSION) == (real > 3 * control + 30)


def test_a_step_that_did_not_run_is_left_to_the_step_checks() -> None:
    assert FarLonger(3, 30).decide(Value(10.0), Value(None)).status is DeltaStatus.UNCHANGED


def _node(image: str, actual: str, order: str = "", recorded: str = "") -> dict[str, Any]:
    return {"image": image, "order": order,
            "versions": [{"kind": "database", "name": "distrogate", "locale": "de_DE.UTF-8",
                          "recorded": recorded or actual, "actual": actual,
                          "mismatch": bool(recorded) and recorded != actual}]}


def test_old_and_new_nodes_with_one_collation_version_pass() -> None:
    found = collation_versions({"n1": _node("baseline", "2.36"),
                                "n4": _node("candidate", "2.36")})
    assert found["ok"], found


def test_a_version_that_differs_between_old_and_new_nodes_names_reindex() -> None:
    found = collation_versions({"n1": _node("baseline", "2.36"),
                                "n4": _node("candidate", "2.41")})
    assert not found["ok"]
    assert "database:distrogate" in found["mismatches"][0]
    assert "REINDEX" in found["action"]


def test_the_same_version_but_another_order_is_a_mismatch_too() -> None:
    """A locale's data edited without a glibc version change (the seed incident's planted
    fault): the version cannot tell, the order of the words can."""
    found = collation_versions({"n1": _node("baseline", "2.36", order="ab|ö|z"),
                                "n4": _node("candidate", "2.36", order="ab|z|ö")})
    assert not found["ok"]
    assert any("sorts" in m for m in found["mismatches"]), found


def test_every_shipped_scenario_is_chosen_by_default() -> None:
    settings = parse({}, {}, "suites.rollforward")
    names = {s.name for s in settings.scenarios}
    assert {"rolling-replace", "replace-all-at-once", "rolling-replace-with-faults"} <= names
    assert len(names) == len(list(SCENARIOS_DIR.glob("*.yaml")))


@pytest.mark.parametrize(("raw", "message"), [
    ({"scenarios": ["rolling-sideways"]}, "suites.rollforward.scenarios: unknown scenario "
                                          "'rolling-sideways'"),
    ({"slowdown": 0.5}, "suites.rollforward.slowdown: expected a number from 1"),
    ({"directory": "/nonexistent"}, "suites.rollforward.directory: not a directory"),
    ({"speed": 1}, "suites.rollforward: unknown key 'speed'"),
])
def test_bad_settings_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(raw, {}, "suites.rollforward")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_scenario_in_the_directory_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        (SCENARIOS_DIR / "rolling-replace.yaml").read_text().replace("nodes: 3", "nodes: 1"))
    with pytest.raises(InputError) as caught:
        parse({"directory": str(tmp_path)}, {}, "suites.rollforward")
    assert "bad.yaml" in str(caught.value) and "cluster.nodes" in str(caught.value)


def test_a_read_while_the_load_runs_is_judged_as_of_its_time() -> None:
    """Acknowledged before the read: must be there; started after it: cannot be; in between:
    either way; failed: never."""
    def write(key: int, started: float, ended: float, status: Status) -> Write:
        return Write(writer=0, key=key, value="v", started=started, ended=ended,
                     status=status, error="")

    history = [write(1, 0, 1, Status.ACKNOWLEDGED), write(2, 9, 11, Status.ACKNOWLEDGED),
               write(3, 12, 13, Status.ACKNOWLEDGED), write(4, 21, 22, Status.ACKNOWLEDGED),
               write(5, 1, 2, Status.FAILED)]
    judged = as_of_read(history, 10.0, 20.0)
    assert [w.key for w in judged] == [1, 2, 3, 5]
    assert [w.status for w in judged] == [Status.ACKNOWLEDGED, Status.INDETERMINATE,
                                          Status.INDETERMINATE, Status.FAILED]
    assert check_keys(judged, [1, 3]).ok
    assert check_keys(judged, [3]).lost == (1,)
    assert check_keys(judged, [1, 4]).unexpected == (4,)
    assert check_keys(judged, [1, 5]).failed_present == (5,)


def test_a_step_is_the_same_check_on_the_control_and_the_real_run() -> None:
    """An add step's text names the image (the baseline in the control, the candidate in the
    real run); the check it is judged as must not, or a failing add on the candidate would
    have no control to be judged against (and passed unjudged, as it once did)."""
    from suites.test_rollforward import _key

    control = StepResult(1, "add", "add n3 (baseline)")
    real = StepResult(1, "add", "add n3 (candidate)")
    assert _key(control) == _key(real) == "1:add n3"
    assert _key(StepResult(2, "catch_up", "catch up n3 (lag <= 1048576 B)")) == "2:catch up n3"
    assert _key(StepResult(3, "switchover", "switchover to n3")) == "3:switchover to n3"


def test_a_run_the_lab_broke_says_why_and_a_timed_out_step_does_not() -> None:
    run = ScenarioRun("rolling-replace", "real", {})
    run.steps.append(StepResult(1, "add", "add n4 (candidate)"))
    assert run.lab_error == ""
    run.steps.append(StepResult(2, "add", "add n5 (candidate)", ok=False,
                                error="LabError: neither image boots", lab_fault=True))
    assert run.lab_error.startswith("step 2 (add n5 (candidate)) failed on the lab")
    timed_out = ScenarioRun("rolling-replace", "real", {})
    timed_out.steps.append(StepResult(1, "add", "add n3 (candidate)", ok=False,
                                      error="GuestCommandTimeout: not streaming"))
    assert timed_out.lab_error == ""
    setup = ScenarioRun("rolling-replace", "control", {}, setup_error="LabError: gone")
    assert "set-up on the baseline failed" in setup.lab_error
