"""The gate policy: which tests block a promotion, which only advise, and which failures are waived.

A policy is a YAML mapping::

    default: blocking            # blocking | advisory: for tests no rule matches
    rules:                       # first matching rule wins
      - pattern: "perf"          # fnmatch glob, tried on the test's nodeid and on its suite name
        mode: advisory
        note: "timings are noisy under TCG"     # optional
      - pattern: "suites/test_pg.py::*"
        mode: blocking
      - pattern: "fio"             # blocking on regressions, while a comparison too noisy to
        mode: blocking             # decide only advises (it never makes the verdict
        noise: advisory            # inconclusive); noise: blocking (the default) keeps it an error
    waivers:
      - pattern: "suites/test_collation.py::test_locale_order[blocking]"   # a test id
        items: [de_DE.UTF-8]     # optional: only these items the test reports (locales, checks)
        reason: "glibc 2.41 changed German collation; REINDEX is planned for the roll-out"
        tracker: "https://tracker.example/OPS-1234"
        expires: 2026-03-31      # YYYY-MM-DD, UTC; live while today (UTC) <= expires
    suites:                      # per-suite settings; each suite validates its own section
      collation:
        locales: [en_US.UTF-8, de_DE.UTF-8]
      nspawn:                    # or its alias, machinectl (one section per suite)
        absolute: true           # any suite: a check the promoted image fails too rejects

Patterns: a pattern without ``*`` or ``?`` is an exact test id (brackets included) or an exact
suite name; with ``*`` or ``?`` it is a glob in which ``[`` and ``]`` are literal characters. A
waiver must name tests, not a whole suite: ``*``, a bare suite name or ``file.py::*`` is refused
as too broad.

Every key but ``default`` is optional. A malformed policy raises :class:`InputError` naming the
file and the key, e.g. ``policy.yaml: key 'waivers[0].expires': expected a date YYYY-MM-DD,
got 'soon'``.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
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
_RULE_KEYS = {"pattern", "mode", "noise", "note"}
_WAIVER_KEYS = {"pattern", "items", "reason", "tracker", "expires"}
ABSOLUTE_KEY = "absolute"  # suites.<name>.absolute: failures shared with the baseline count


def today_utc() -> date:
    """Today's date in UTC: waiver expiry is judged in UTC, wherever the gate runs."""
    return datetime.now(UTC).date()


def item_key(item: str) -> str:
    """How item ids are compared: a locale's codeset as glibc normalizes it (``th_TH.UTF-8``
    and ``th_TH.utf8`` are one item); ids without a codeset (checks, pairs) are unchanged."""
    from distrogate.collation.known import normalize

    return normalize(item)


def item_subject(item: str) -> str:
    """The key of what an item is about: ``strcoll:th_TH.UTF-8`` (a finding of one kind about
    a locale) is about ``th_TH.utf8``, so a waiver naming the locale covers it too."""
    return item_key(item.rsplit(":", 1)[-1])


def pattern_matches(pattern: str, name: str) -> bool:
    """Whether ``pattern`` names ``name``: exactly when it has no ``*`` or ``?``, otherwise as a
    glob in which ``[`` and ``]`` are plain characters (test ids carry brackets)."""
    if "*" not in pattern and "?" not in pattern:
        return pattern == name
    literal = re.sub(r"[\[\]]", lambda m: f"[{m.group(0)}]", pattern)
    return fnmatchcase(name, literal)


class Mode(StrEnum):
    """Whether a test's outcome can change the verdict."""

    BLOCKING = "blocking"
    ADVISORY = "advisory"


@dataclass(frozen=True)
class Rule:
    """A glob on nodeid or suite name and the mode it gives; ``noise``: the mode of its tests'
    comparisons that were too noisy to decide (inconclusive, no regression)."""

    pattern: str
    mode: Mode
    note: str = ""
    noise: Mode = Mode.BLOCKING

    def matches(self, nodeid: str, suite: str) -> bool:
        """True when the pattern matches the nodeid or the suite name."""
        return pattern_matches(self.pattern, nodeid) or pattern_matches(self.pattern, suite)


@dataclass(frozen=True)
class Waiver:
    """A known failure accepted until ``expires`` (inclusive), with a reason and a tracker link."""

    pattern: str
    reason: str
    tracker: str
    expires: date
    items: tuple[str, ...] = ()  # empty: the whole test; else only these items of it

    def matches(self, nodeid: str) -> bool:
        """True when the pattern matches the nodeid."""
        return pattern_matches(self.pattern, nodeid)

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

    def noise_mode_for(self, nodeid: str, suite: str) -> Mode:
        """The mode of a test whose only trouble is a comparison too noisy to decide: the
        first matching rule's ``noise`` (an advisory rule's tests advise anyway), else the
        default mode. Blocking: the test is an error and the verdict inconclusive."""
        for rule in self.rules:
            if rule.matches(nodeid, suite):
                return Mode.ADVISORY if rule.mode is Mode.ADVISORY else rule.noise
        return self.default

    def is_blocking(self, nodeid: str, suite: str) -> bool:
        """True when the test's outcome can change the verdict."""
        return self.mode_for(nodeid, suite) is Mode.BLOCKING

    def live_waiver(self, nodeid: str, today: date) -> Waiver | None:
        """The first live whole-test waiver covering ``nodeid``, if any."""
        for waiver in self.waivers:
            if waiver.is_live(today) and not waiver.items and waiver.matches(nodeid):
                return waiver
        return None

    def live_item_waivers(self, nodeid: str, today: date) -> dict[str, Waiver]:
        """Item subject (see :func:`item_subject`) → the first live waiver naming that item of
        ``nodeid``."""
        found: dict[str, Waiver] = {}
        for waiver in self.waivers:
            if waiver.is_live(today) and waiver.items and waiver.matches(nodeid):
                for item in waiver.items:
                    found.setdefault(item_subject(item), waiver)
        return found

    def is_absolute(self, suite: str) -> bool:
        """Whether ``suites.<suite>.absolute`` makes failures the baseline shares count."""
        value = self.suites.get(suite, {})
        return isinstance(value, Mapping) and value.get(ABSOLUTE_KEY) is True

    def expired_waivers(self, today: date) -> list[Waiver]:
        """Waivers past their expiry date: they cover nothing any more."""
        return [w for w in self.waivers if not w.is_live(today)]

    def suite_config(self, name: str) -> dict[str, Any]:
        """The ``suites.<name>`` mapping from the policy (a copy, without the generic
        ``absolute`` key), ``{}`` when absent."""
        value = self.suites.get(name, {})
        config = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else {}
        config.pop(ABSOLUTE_KEY, None)
        return config


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


class _PlainDatesLoader(yaml.SafeLoader):
    """YAML's safe loader with dates left as strings: ``expires: 2026-02-30`` must give the
    policy's own one-line error, not the date constructor's exception."""


_PlainDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse policy YAML text; ``source`` names it in error messages."""
    try:
        doc = yaml.load(text, Loader=_PlainDatesLoader)
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
            noise=_mode(source, f"{key}.noise", entry.get("noise", "blocking")),
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
        pattern = _string(source, f"{key}.pattern", entry.get("pattern"))
        _not_too_broad(source, f"{key}.pattern", pattern)
        items = _list(source, f"{key}.items", entry.get("items"))
        if not all(isinstance(i, str) and i.strip() for i in items):
            raise InputError(f"{source}: key '{key}.items': expected a list of item names "
                             f"(locales, checks), got {items!r}")
        waivers.append(Waiver(
            pattern=pattern,
            reason=_string(source, f"{key}.reason", entry.get("reason")),
            tracker=tracker,
            expires=_date(source, f"{key}.expires", entry.get("expires")),
            items=tuple(i.strip() for i in items),
        ))
    return waivers


def _not_too_broad(source: str, key: str, pattern: str) -> None:
    """A waiver names tests: ``*``, a bare suite name or ``file.py::*`` would waive anything."""
    test_part = pattern.rsplit("::", 1)[1] if "::" in pattern else ""
    if not test_part.strip("*?[]"):
        raise InputError(f"{source}: key '{key}': {pattern!r} is too broad: a waiver names "
                         f"test ids (like 'suites/test_x.py::test_y[z]'), not a whole suite")


def _suites(source: str, value: Any) -> dict[str, Any]:
    """The ``suites:`` sections by suite name: an alias (``machinectl``) is stored under its
    suite's name (``nspawn``); both at once is an error."""
    from distrogate.suites import canonical_name

    suites = _mapping(source, "suites", value)
    found: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name, config in suites.items():
        if not isinstance(config, dict):
            raise InputError(f"{source}: key 'suites.{name}': expected a mapping, "
                             f"got {_kind(config)}")
        absolute = config.get(ABSOLUTE_KEY, False)
        if not isinstance(absolute, bool):
            raise InputError(f"{source}: key 'suites.{name}.{ABSOLUTE_KEY}': expected true or "
                             f"false, got {absolute!r}")
        suite = canonical_name(str(name))
        if suite in found:
            raise InputError(f"{source}: key 'suites.{name}': the suite {suite} has a section "
                             f"already (as {spelled[suite]!r}); give one")
        found[suite] = config
        spelled[suite] = str(name)
    return found


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
        except ValueError as exc:
            raise InputError(f"{source}: key '{key}': {value!r} is not a calendar date "
                             f"({exc})") from None
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
