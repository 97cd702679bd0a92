"""The gate policy: which tests block a promotion, which only advise, and which failures are waived.

A policy is a YAML mapping::

    default: blocking            # blocking | advisory: for tests no rule matches
    rules:                       # first matching rule wins
      - pattern: "perf"          # fnmatch glob, tried on the test's nodeid and on its suite name
        mode: advisory
        note: "timings are noisy under TCG"     # optional
      - pattern: "suites/test_pg.py::*"
        mode: blocking
    waivers:
      - pattern: "suites/test_collation.py::test_order[de_DE*"   # glob on the nodeid
        reason: "glibc 2.41 changed German collation; apps re-index on upgrade"
        tracker: "https://tracker.example/OPS-1234"
        expires: 2026-03-31      # YYYY-MM-DD; live while today <= expires
    suites:                      # free-form per-suite settings, handed to suites untouched
      collation:
        locales: [en_US.UTF-8, de_DE.UTF-8]

Every key but ``default`` is optional. A malformed policy raises :class:`InputError` naming the
file and the key, e.g. ``policy.yaml: key 'waivers[0].expires': expected a date YYYY-MM-DD,
got 'soon'``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from distrogate.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_POLICY_NAME = "policy/default.yaml"
_TOP_KEYS = {"default", "rules", "waivers", "suites"}
_RULE_KEYS = {"pattern", "mode", "note"}
_WAIVER_KEYS = {"pattern", "reason", "tracker", "expires"}


class Mode(StrEnum):
    """Whether a test's outcome can change the verdict."""

    BLOCKING = "blocking"
    ADVISORY = "advisory"


@dataclass(frozen=True)
class Rule:
    """A glob on nodeid or suite name and the mode it gives."""

    pattern: str
    mode: Mode
    note: str = ""

    def matches(self, nodeid: str, suite: str) -> bool:
        """True when the pattern matches the nodeid or the suite name."""
        return fnmatchcase(nodeid, self.pattern) or fnmatchcase(suite, self.pattern)


@dataclass(frozen=True)
class Waiver:
    """A known failure accepted until ``expires`` (inclusive), with a reason and a tracker link."""

    pattern: str
    reason: str
    tracker: str
    expires: date

    def matches(self, nodeid: str) -> bool:
        """True when the pattern matches the nodeid."""
        return fnmatchcase(nodeid, self.pattern)

    def is_live(self, today: date) -> bool:
        """A waiver is live up to and including its expiry date."""
        return today <= self.expires


@dataclass(frozen=True)
class Policy:
    """A parsed policy; ``source`` names the file it came from."""

    default: Mode = Mode.BLOCKING
    rules: tuple[Rule, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    suites: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<builtin>"

    def mode_for(self, nodeid: str, suite: str) -> Mode:
        """The mode of the first rule matching ``nodeid`` or ``suite``, else the default."""
        for rule in self.rules:
            if rule.matches(nodeid, suite):
                return rule.mode
        return self.default

    def is_blocking(self, nodeid: str, suite: str) -> bool:
        """True when the test's outcome can change the verdict."""
        return self.mode_for(nodeid, suite) is Mode.BLOCKING

    def live_waiver(self, nodeid: str, today: date) -> Waiver | None:
        """The first live waiver covering ``nodeid``, if any."""
        for waiver in self.waivers:
            if waiver.is_live(today) and waiver.matches(nodeid):
                return waiver
        return None

    def expired_waivers(self, today: date) -> list[Waiver]:
        """Waivers past their expiry date: they cover nothing any more."""
        return [w for w in self.waivers if not w.is_live(today)]

    def suite_config(self, name: str) -> dict[str, Any]:
        """The ``suites.<name>`` mapping from the policy (a copy), ``{}`` when absent."""
        value = self.suites.get(name, {})
        return copy.deepcopy(dict(value)) if isinstance(value, Mapping) else {}


def load_policy(path: Path | None = None) -> Policy:
    """Load a policy file; ``None`` loads the default policy shipped with distrogate."""
    if path is None:
        text = resources.files("distrogate").joinpath(DEFAULT_POLICY_NAME).read_text()
        return parse_policy(text, source="default.yaml")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: policy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read policy: {exc}") from exc
    return parse_policy(text, source=str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse policy YAML text; ``source`` names it in error messages."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise InputError(f"{source}: not valid YAML{where}: {problem}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a mapping at the top, got {_kind(doc)}")
    _no_unknown_keys(source, doc, _TOP_KEYS, prefix="")
    policy = Policy(
        default=_mode(source, "default", doc.get("default", "blocking")),
        rules=tuple(_rules(source, doc.get("rules", []))),
        waivers=tuple(_waivers(source, doc.get("waivers", []))),
        suites=_suites(source, doc.get("suites", {})),
        source=source,
    )
    log.debug("policy %s: %d rules, %d waivers", source, len(policy.rules), len(policy.waivers))
    return policy


def _rules(source: str, value: Any) -> list[Rule]:
    items = _list(source, "rules", value)
    rules = []
    for i, item in enumerate(items):
        key = f"rules[{i}]"
        entry = _mapping(source, key, item)
        _no_unknown_keys(source, entry, _RULE_KEYS, prefix=key + ".")
        rules.append(Rule(
            pattern=_string(source, f"{key}.pattern", entry.get("pattern")),
            mode=_mode(source, f"{key}.mode", entry.get("mode")),
            note=_string(source, f"{key}.note", entry.get("note", ""), allow_empty=True),
        ))
    return rules


def _waivers(source: str, value: Any) -> list[Waiver]:
    items = _list(source, "waivers", value)
    waivers = []
    for i, item in enumerate(items):
        key = f"waivers[{i}]"
        entry = _mapping(source, key, item)
        _no_unknown_keys(source, entry, _WAIVER_KEYS, prefix=key + ".")
        tracker = _string(source, f"{key}.tracker", entry.get("tracker"))
        if not tracker.startswith(("http://", "https://")):
            raise InputError(f"{source}: key '{key}.tracker': expected an http(s) URL, "
                             f"got {tracker!r}")
        waivers.append(Waiver(
            pattern=_string(source, f"{key}.pattern", entry.get("pattern")),
            reason=_string(source, f"{key}.reason", entry.get("reason")),
            tracker=tracker,
            expires=_date(source, f"{key}.expires", entry.get("expires")),
        ))
    return waivers


def _suites(source: str, value: Any) -> dict[str, Any]:
    suites = _mapping(source, "suites", value)
    for name, config in suites.items():
        if not isinstance(config, dict):
            raise InputError(f"{source}: key 'suites.{name}': expected a mapping, "
                             f"got {_kind(config)}")
    return suites


def _mode(source: str, key: str, value: Any) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise InputError(
            f"{source}: key '{key}': expected 'blocking' or 'advisory', got {value!r}"
        ) from None


def _date(source: str, key: str, value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InputError(f"{source}: key '{key}': expected a date YYYY-MM-DD, got {value!r}")


def _string(source: str, key: str, value: Any, allow_empty: bool = False) -> str:
    if value is None:
        raise InputError(f"{source}: key '{key}': missing")
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise InputError(f"{source}: key '{key}': expected a non-empty string, got {value!r}")
    return value


def _list(source: str, key: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{source}: key '{key}': expected a list, got {_kind(value)}")
    return value


def _mapping(source: str, key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{source}: key '{key}': expected a mapping, got {_kind(value)}")
    return value


def _no_unknown_keys(source: str, entry: dict[str, Any], known: set[str], prefix: str) -> None:
    for name in entry:
        if name not in known:
            allowed = ", ".join(sorted(known))
            raise InputError(f"{source}: key '{prefix}{name}': unknown key (allowed: {allowed})")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
