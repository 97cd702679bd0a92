"""The DNF suite's settings: defaults, and one-line input errors naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from distrogate.dnf.faults import FAULT_CLASSES, QUICK_TARGETS, TARGETLESS, TARGETS
from distrogate.dnf.settings import DnfSettings, parse
from distrogate.errors import InputError
from distrogate.suites import find_suite


def test_defaults_are_the_quick_profile_every_class_once_with_the_reference_wrapper() -> None:
    settings = parse({}, {}, "suites.dnf")
    assert settings == DnfSettings()
    assert settings.profile == "quick" and settings.speed == ("makecache",)
    assert settings.classes == tuple(FAULT_CLASSES)
    assert [c for c, _ in settings.cells] == list(FAULT_CLASSES)  # each class once
    assert dict(settings.cells) == {**QUICK_TARGETS, **TARGETLESS}
    assert settings.reference_wrapper


def test_the_nightly_profile_runs_every_class_on_every_target_and_both_speeds() -> None:
    settings = parse({"profile": "nightly"}, {}, "suites.dnf")
    assert settings.targets == tuple(TARGETS) and settings.speed == ("makecache", "install")
    assert len(settings.cells) == (len(FAULT_CLASSES) - 1) * len(TARGETS) + 1
    chosen = parse({"profile": "quick"}, {"dnf_profile": "nightly"}, "suites.dnf")
    assert chosen.profile == "nightly"  # the pytest option wins over the policy


def test_explicit_targets_and_speed_override_the_profile() -> None:
    settings = parse({"classes": ["stall"], "targets": ["repomd", "packages"], "speed": []},
                     {}, "suites.dnf")
    assert settings.cells == [("stall", "repomd"), ("stall", "packages")]
    assert settings.speed == ()


def test_an_unknown_fault_class_is_an_input_error_naming_it() -> None:
    with pytest.raises(InputError, match=r"suites.dnf.classes: unknown fault class 'dns_poison'"):
        parse({"classes": ["stall", "dns_poison"]}, {}, "suites.dnf")


@pytest.mark.parametrize(("raw", "message"), [
    ({"targets": ["kernel"]}, "suites.dnf.targets: unknown target 'kernel'"),
    ({"profile": "weekly"}, "suites.dnf.profile: unknown profile 'weekly'"),
    ({"packages": ["bash"]}, "suites.dnf.packages: unknown package 'bash'"),
    ({"wrapper": ""}, "suites.dnf.wrapper: expected a command line"),
    ({"wrapper_runs": "never"}, "suites.dnf.wrapper_runs: expected one of"),
    ({"speed_runs": 3}, "suites.dnf.speed_runs: expected a number from 5 to 50"),
    ({"stall_seconds": True}, "suites.dnf.stall_seconds: expected a number"),
    ({"retries": 3}, "suites.dnf: unknown key 'retries'"),
])
def test_bad_settings_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        parse(raw, {}, "suites.dnf")


def test_the_registry_knows_the_suite_and_keeps_the_order_of_classes() -> None:
    suite = find_suite("dnf")
    assert suite is not None and suite.test_file == "test_dnf.py"
    settings = suite.parse_settings({"classes": ["stall", "http_503"], "absolute": True})
    assert isinstance(settings, DnfSettings)
    assert settings.classes == ("http_503", "stall")


def test_a_wrapper_of_the_fleets_own_is_not_the_reference() -> None:
    settings = parse({"wrapper": "  /usr/bin/fleet-dnf   --quiet "}, {}, "suites.dnf")
    assert settings.wrapper == "/usr/bin/fleet-dnf --quiet"
    assert not settings.reference_wrapper


def test_the_speed_comparisons_can_be_left_out_but_not_misnamed() -> None:
    assert parse({"speed": []}, {}, "suites.dnf").speed == ()
    assert parse({"speed": ["install"]}, {}, "suites.dnf").speed == ("install",)
    with pytest.raises(InputError, match=r"suites\.dnf\.speed: unknown speed step 'fast'"):
        parse({"speed": ["fast"]}, {}, "suites.dnf")


def test_what_the_policy_leaves_out_is_not_collected(tmp_path: Path) -> None:
    """``classes`` and ``speed`` choose the tests: the rest is deselected, neither skipped
    nor passed."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("suites:\n  dnf: {classes: [stall], speed: []}\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "--policy", str(policy), "suites/test_dnf.py"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False)
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert "suites/test_dnf.py::test_fault_class[stall]" in ids, done.stdout
    assert not [i for i in ids if "test_speed" in i or "http_503" in i], ids
    assert "deselected" in done.stdout, done.stdout
