"""The suite registry: names and aliases, settings validated when the policy loads, options."""

from __future__ import annotations

from pathlib import Path

import pytest

from distrogate.collation.settings import CollationSettings
from distrogate.errors import InputError
from distrogate.gatecli import suite_names, suite_paths
from distrogate.nspawn.suite import SuiteConfig
from distrogate.policy import parse_policy
from distrogate.suites import (
    REGISTRY,
    canonical_name,
    find_suite,
    options_from_args,
    plain,
    settings_for,
    validate_settings,
)

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "suites"


def test_every_shipped_suite_has_its_file_and_package() -> None:
    for suite in REGISTRY:
        assert (SUITES / suite.test_file).is_file(), suite
        if suite.package is not None:
            assert (REPO / suite.package.replace(".", "/") / "__init__.py").is_file(), suite
    assert [s.name for s in REGISTRY] == ["smoke", "collation", "nspawn", "ipsec", "dnf", "fio",
                                           "rollforward"]


def test_machinectl_is_an_alias_of_nspawn() -> None:
    assert canonical_name("machinectl") == "nspawn"
    assert canonical_name("nspawn") == "nspawn"
    assert canonical_name("kafka") == "kafka"
    assert find_suite("machinectl") is find_suite("nspawn")
    assert suite_paths(["machinectl"], SUITES) == [SUITES / "test_nspawn.py"]
    assert suite_paths(["machinectl", "smoke"], SUITES) == [SUITES / "test_nspawn.py",
                                                            SUITES / "test_smoke.py"]


def test_an_unknown_suite_names_the_aliases() -> None:
    with pytest.raises(InputError, match=r"--suite machinectI: no such suite .*nspawn "
                                         r"\(machinectl\)"):
        suite_paths(["machinectI"], SUITES)


def test_suite_names_of_the_suites_folder_and_of_files() -> None:
    assert suite_names([SUITES]) == ["collation", "dnf", "fio", "ipsec", "nspawn", "rollforward",
                                    "smoke"]
    assert suite_names([SUITES / "test_nspawn.py"]) == ["nspawn"]


def test_an_alias_section_in_the_policy_is_the_suites_section() -> None:
    policy = parse_policy("suites:\n  machinectl: {absolute: true, checks: [start]}\n",
                          source="p.yaml")
    assert policy.is_absolute("nspawn")
    settings = validate_settings(policy, ["nspawn"])
    config = settings["nspawn"]
    assert isinstance(config, SuiteConfig) and config.checks == ("start",)
    assert settings_for(policy, "machinectl") == config


def test_both_the_name_and_the_alias_is_one_line_naming_the_key() -> None:
    with pytest.raises(InputError, match=r"p.yaml: key 'suites.machinectl': the suite nspawn "
                                         r"has a section already"):
        parse_policy("suites:\n  nspawn: {}\n  machinectl: {}\n", source="p.yaml")


@pytest.mark.parametrize(("text", "problem"), [
    ("suites:\n  machinectl: {checks: [shel]}\n", "suites.nspawn.checks: unknown check 'shel'"),
    ("suites:\n  collation: {jobs: 0}\n", "suites.collation.jobs: expected an integer"),
    ("suites:\n  collation: {locales: [en_UX.UTF-8]}\n", "suites.collation.locales"),
    ("suites:\n  smoke: {retries: 2}\n", "suites.smoke: this suite has no settings, got retries"),
    ("suites:\n  colation: {}\n", "key 'suites.colation': no such suite"),
])
def test_bad_settings_are_refused_when_the_policy_loads(text: str, problem: str) -> None:
    policy = parse_policy(text, source="p.yaml")
    with pytest.raises(InputError) as raised:
        validate_settings(policy, ["smoke", "collation", "nspawn"])
    assert str(raised.value).startswith("p.yaml: ") and problem in str(raised.value)


def test_typed_settings_of_each_suite_and_of_a_suite_of_your_own() -> None:
    policy = parse_policy("suites:\n  collation: {locales: [de_DE.UTF-8]}\n"
                          "  kafka: {brokers: 3}\n", source="p.yaml")
    typed = validate_settings(policy, ["smoke", "collation", "kafka"], {"corpus": "full"})
    collation = typed["collation"]
    assert isinstance(collation, CollationSettings)
    assert collation.corpus == "full" and collation.locales == ("de_DE.UTF-8",)
    assert typed["smoke"] is None
    assert typed["kafka"] == {"brokers": 3}
    data = plain(typed)
    assert data["collation"]["locales"] == ["de_DE.UTF-8"]
    assert isinstance(plain(settings_for(policy, "nspawn"))["container"]["packages"], list)


def test_suite_options_are_read_from_the_pytest_arguments() -> None:
    assert options_from_args(["-k", "x", "--corpus", "full"])["corpus"] == "full"
    assert options_from_args(["--corpus=quick"])["corpus"] == "quick"
    assert options_from_args([])["corpus"] is None
    with pytest.raises(InputError, match="--corpus huge: expected one of quick, full"):
        options_from_args(["--corpus", "huge"])
