"""Smoke: both images boot to multi-user with no failed units, the agent answers, and the
report records each image's os-release, kernel and glibc.

Each test runs on both images (``[baseline]``, ``[candidate]``) and the verdict judges the
candidate's side against the baseline's: a failure both share (a unit that fails on the promoted
image too) is reported, not a regression. Boot failures are judged on the same lab: a candidate
that cannot boot while the baseline boots is a regression (failed); if the baseline cannot boot
either, the lab is at fault (error, so the verdict is inconclusive).
"""

from __future__ import annotations

import pytest

from distrogate.differential import Exact, Observation, Value
from distrogate.guest.machine import Machine
from fixtures.recording import Recorder

pytestmark = pytest.mark.vm

ROLES = ("baseline", "candidate")


@pytest.mark.parametrize("role", ROLES)
def test_boots_to_multi_user(role: str, request: pytest.FixtureRequest, record: Recorder) -> None:
    """The image reaches multi-user.target with no failed units (a candidate that does not boot
    at all fails here, judged against the baseline on the same lab by the fixture)."""
    machine: Machine = request.getfixturevalue(role)
    state = machine.execute("systemctl is-system-running --wait", timeout=180)
    failed = machine.succeed("systemctl list-units --failed --plain --no-legend --no-pager")
    record.measure(f"{role}_failed_units", len(failed.splitlines()), "count")
    for unit in [line.split()[0] for line in failed.splitlines() if line.split()]:
        journal = machine.execute(["journalctl", "-u", unit, "-n", "20", "--no-pager"], timeout=60)
        record.finding(f"{role}: {unit} failed", journal.stdout_text.strip()[-4000:],
                       {"unit": unit})
    assert state.stdout_text.strip() == "running", (
        f"{role}: system state {state.stdout_text.strip()!r}; failed units: {failed.strip()}")
    machine.succeed("systemctl is-active multi-user.target")


@pytest.mark.parametrize("role", ROLES)
def test_agent_answers(role: str, request: pytest.FixtureRequest) -> None:
    """The guest agent answers pings and reports its version."""
    machine: Machine = request.getfixturevalue(role)
    agent = machine.handle.agent()
    agent.command("guest-ping", timeout=10)
    info = agent.command("guest-info", timeout=10)
    assert info.get("version"), f"{role}: guest-info has no version: {info}"


def _complete(observation: Observation | None) -> bool:
    """Whether image facts name the release and the glibc version."""
    return isinstance(observation, Value) and isinstance(observation.value, dict) and bool(
        observation.value.get("os_release") and observation.value.get("glibc"))


def test_image_facts(candidate: Machine, baseline: Machine, record: Recorder) -> None:
    """Record os-release, kernel and glibc of both images (as seen from inside): each image's
    facts are an observation; both must name their release and glibc."""
    facts = {}
    for role, machine in (("candidate", candidate), ("baseline", baseline)):
        os_release = dict(
            line.split("=", 1) for line in machine.succeed("cat /etc/os-release").splitlines()
            if "=" in line)
        glibc = machine.succeed("getconf GNU_LIBC_VERSION").strip()
        facts[role] = {
            "os_release": os_release.get("PRETTY_NAME", "").strip('"'),
            "kernel": machine.succeed("uname -r").strip(),
            "glibc": glibc.removeprefix("glibc ").strip(),
        }
        record.observe("image_facts", role, Value(facts[role]))
    record.finding(
        "images under test",
        f"candidate: {facts['candidate']['os_release']}, kernel {facts['candidate']['kernel']}, "
        f"glibc {facts['candidate']['glibc']}; baseline: {facts['baseline']['os_release']}, "
        f"kernel {facts['baseline']['kernel']}, glibc {facts['baseline']['glibc']}",
        data={f"{role}_{key}": value for role, values in facts.items()
              for key, value in values.items()})
    delta = record.compare("image_facts", Exact(predicate=_complete, wanted="a release name "
                                                "(os-release PRETTY_NAME) and a glibc version"),
                           title="os-release, kernel and glibc")
    assert _complete(delta.candidate), delta.detail
