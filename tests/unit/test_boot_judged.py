"""Whose fault a guest that does not come up is (:func:`~distrogate.lab.run.boot_judged`):
the decision on a scripted sequence of boot outcomes, no VMs. The roll-forward's nodes and
every suite's first boot go through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from distrogate.errors import CandidateDoesNotBoot, LabError
from distrogate.lab.run import BootFailure, boot_judged


@dataclass(frozen=True)
class Image:
    name: str

    @property
    def digest(self) -> str:
        return f"sha256-of-{self.name}"


@dataclass
class ScriptedLab:
    """Each boot of an image takes the next outcome from its script: True boots."""

    script: dict[str, list[bool]]
    boots: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)

    def boot(self, image: Image, *, role: str, **options: Any) -> str:
        self.boots.append(image.name)
        if not self.script[image.name].pop(0):
            raise BootFailure(f"{image.name}: Kernel panic - not syncing")
        return f"{role}:{image.name}"

    def destroy(self, machine: str) -> None:
        self.destroyed.append(machine)


CANDIDATE, BASELINE = Image("candidate"), Image("baseline")


def judged(lab: ScriptedLab, image: Image = CANDIDATE) -> str:
    return boot_judged(lab, image, control=BASELINE, role="n5")  # type: ignore[arg-type]


def test_a_candidate_that_boots_is_booted_once() -> None:
    lab = ScriptedLab({"candidate": [True], "baseline": []})
    assert judged(lab) == "n5:candidate" and lab.boots == ["candidate"]


def test_a_one_off_crash_of_the_candidate_is_booted_again_after_the_baseline() -> None:
    lab = ScriptedLab({"candidate": [False, True], "baseline": [True]})
    assert judged(lab) == "n5:candidate"
    assert lab.boots == ["candidate", "baseline", "candidate"]
    assert lab.destroyed == ["control:baseline"]


def test_a_candidate_failing_twice_with_the_baseline_booting_between_is_the_images_fault() -> None:
    lab = ScriptedLab({"candidate": [False, False], "baseline": [True]})
    with pytest.raises(CandidateDoesNotBoot, match="twice, the baseline booting between"):
        judged(lab)


def test_neither_image_booting_is_the_labs_fault() -> None:
    lab = ScriptedLab({"candidate": [False], "baseline": [False]})
    with pytest.raises(LabError, match="neither image boots"):
        judged(lab)


def test_the_baseline_itself_gets_a_second_boot_and_two_failures_are_the_labs() -> None:
    again = ScriptedLab({"baseline": [False, True]})
    assert judged(again, BASELINE) == "n5:baseline" and again.boots == ["baseline"] * 2
    never = ScriptedLab({"baseline": [False, False]})
    with pytest.raises(LabError, match="the baseline does not boot on this lab"):
        judged(never, BASELINE)
