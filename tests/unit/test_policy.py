"""Policy parsing: modes, first-match rules, waivers, suite config, and one-line errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from distrogate.errors import InputError
from distrogate.policy import Mode, load_policy, parse_policy

GOOD = """
default: advisory
rules:
  - pattern: "suites/test_pg.py::*"
    mode: blocking
  - pattern: "collation"
    mode: blocking
    note: suite-level rule
  - pattern: "*"
    mode: advisory
waivers:
  - pattern: "suites/test_collation.py::test_order[de_DE*"
    reason: German collation changed in glibc 2.41
    tracker: https://tracker.example/OPS-1
    expires: 2025-06-30
suites:
  collation:
    locales: [en_US.UTF-8, de_DE.UTF-8]
    blocking_locales: [en_US.UTF-8]
"""


def test_parses_rules_first_match_wins() -> None:
    policy = parse_policy(GOOD, "policy.yaml")
    assert policy.default is Mode.ADVISORY
    assert policy.mode_for("suites/test_pg.py::test_repl", "pg") is Mode.BLOCKING
    assert policy.mode_for("suites/test_collation.py::test_x", "collation") is Mode.BLOCKING
    assert policy.mode_for("suites/test_fio.py::test_x", "fio") is Mode.ADVISORY


def test_default_applies_without_rules() -> None:
    policy = parse_policy("default: blocking\n")
    assert policy.is_blocking("anything::x", "s")
    assert policy.rules == () and policy.waivers == ()


def test_waiver_live_through_its_expiry_day() -> None:
    policy = parse_policy(GOOD)
    nodeid = "suites/test_collation.py::test_order[de_DE.UTF-8]"
    assert policy.live_waiver(nodeid, date(2025, 6, 30)) is not None
    assert policy.live_waiver(nodeid, date(2025, 7, 1)) is None
    assert policy.expired_waivers(date(2025, 7, 1))[0].expires == date(2025, 6, 30)
    other = "suites/test_collation.py::test_order[sv_SE]"
    assert policy.live_waiver(other, date(2025, 1, 1)) is None


def test_quoted_date_accepted() -> None:
    text = GOOD.replace("expires: 2025-06-30", "expires: '2025-06-30'")
    assert parse_policy(text).waivers[0].expires == date(2025, 6, 30)


def test_suite_config_is_returned_untouched_and_copied() -> None:
    policy = parse_policy(GOOD)
    config = policy.suite_config("collation")
    assert config == {"locales": ["en_US.UTF-8", "de_DE.UTF-8"],
                      "blocking_locales": ["en_US.UTF-8"]}
    config["locales"].append("xx")
    assert "xx" not in policy.suite_config("collation")["locales"]
    assert policy.suite_config("absent") == {}


def test_packaged_default_loads() -> None:
    policy = load_policy(None)
    assert policy.default is Mode.BLOCKING
    assert "locales" in policy.suite_config("collation")


def test_load_from_file_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    assert load_policy(path).source == str(path)
    with pytest.raises(InputError, match="policy file not found"):
        load_policy(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("waivers:\n  - {pattern: 'a.py::t', reason: r, tracker: 'https://t/1', expires: soon}\n",
         "policy.yaml: key 'waivers[0].expires': expected a date YYYY-MM-DD, got 'soon'"),
        ("waivers:\n  - {pattern: 'a.py::t', reason: r, tracker: 'https://t/1', expires: '2025-13-01'}\n",
         "key 'waivers[0].expires': '2025-13-01' is not a calendar date"),
        ("waivers:\n  - {pattern: 'a.py::t', tracker: 'https://t/1', expires: 2025-01-01}\n",
         "key 'waivers[0].reason': missing"),
        ("waivers:\n  - {pattern: 'a.py::t', reason: r, tracker: OPS-1, expires: 2025-01-01}\n",
         "key 'waivers[0].tracker': expected an http(s) URL, got 'OPS-1'"),
        ("waivers:\n  - {pattern: 'a.py::t', reason: r, tracker: 'https://t', expires: 2025-01-01, "
         "owner: me}\n", "key 'waivers[0].owner': unknown key"),
        ("default: maybe\n", "key 'default': expected 'blocking' or 'advisory', got 'maybe'"),
        ("rules:\n  - {pattern: '*', mode: gating}\n", "key 'rules[0].mode'"),
        ("rules:\n  - {mode: advisory}\n", "key 'rules[0].pattern': missing"),
        ("rules: {pattern: x}\n", "key 'rules': expected a list, got a mapping"),
        ("suites:\n  collation: [a, b]\n", "key 'suites.collation': expected a mapping"),
        ("defualt: blocking\n", "key 'defualt': unknown key"),
        ("- just a list\n", "expected a mapping at the top"),
        ("default: [\n", "not valid YAML at line"),
    ],
)
def test_malformed_policy_names_file_and_key(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_policy(text, "policy.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("policy.yaml: ")
    assert "\n" not in str(info.value)
