"""The suite registry: each shipped suite declared in one place.

A :class:`Suite` names the suite (and its aliases: ``machinectl`` is ``nspawn``), its test file
under ``suites/``, its settings (a frozen dataclass parsed from the policy's ``suites.<name>``
section), its pytest options (collation's ``--corpus``) and its library package under
``distrogate/``. The gate validates every ``suites:`` section here when the policy loads, before
anything is built or booted, so that a bad setting is one line with exit 3 and not an error in
the middle of a run; the ``suite_config`` fixture hands a suite its typed settings.

A suite of your own (``--suite ./test_kafka.py``) may have a section too; it is handed to the
suite as it is (a plain mapping).

To add a suite: write ``suites/test_<name>.py``, its package ``distrogate/<name>/`` with a
settings dataclass and a parser ``(raw mapping, options, where) -> settings`` raising
:class:`~distrogate.errors.InputError`, and one :class:`Suite` entry in :data:`REGISTRY`.
"""

from __future__ import annotations

import argparse
import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from distrogate.errors import InputError

if TYPE_CHECKING:
    from distrogate.policy import Policy

log = logging.getLogger(__name__)

#: ``(raw policy section without "absolute", pytest option values, where) -> settings``
SettingsParser = Callable[[dict[str, Any], Mapping[str, Any], str], object]


@dataclass(frozen=True)
class SuiteOption:
    """A pytest option a suite adds (``--corpus``); the gate reads it from the arguments after
    ``--`` too, so that the plan records the settings the run really uses."""

    flag: str
    help: str
    choices: tuple[str, ...] | None = None
    default: str | None = None

    @property
    def dest(self) -> str:
        """The option's attribute name (``--corpus`` → ``corpus``)."""
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Suite:
    """One shipped suite: names, test file, settings, options and library package."""

    name: str
    test_file: str  # under suites/
    package: str | None = None  # its library package under distrogate/ (None: none)
    aliases: tuple[str, ...] = ()
    settings: SettingsParser | None = None  # None: the suite takes no settings
    options: tuple[SuiteOption, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The name and every alias."""
        return (self.name, *self.aliases)

    def parse_settings(self, raw: Mapping[str, Any] | None, options: Mapping[str, Any] | None
                       = None, where: str | None = None) -> object | None:
        """The typed settings from the policy section ``raw`` (``absolute`` left out) and the
        values of the suite's pytest options; raises :class:`InputError` naming the key.
        A suite without settings returns None (and refuses any key)."""
        raw = {k: v for k, v in dict(raw or {}).items() if k != "absolute"}
        where = where or f"suites.{self.name}"
        if self.settings is None:
            if raw:
                raise InputError(f"{where}: this suite has no settings, got {', '.join(raw)}")
            return None
        return self.settings(raw, dict(options or {}), where)


def _collation_settings(raw: dict[str, Any], options: Mapping[str, Any], where: str) -> object:
    from distrogate.collation.known import unknown_locale_problem
    from distrogate.collation.settings import parse_settings

    settings = parse_settings(raw, corpus_override=options.get("corpus"), where=where)
    for key in ("locales", "blocking_locales"):
        names = raw.get(key, "all")
        for name in names if isinstance(names, list) else []:
            problem = unknown_locale_problem(name)
            if problem:
                raise InputError(f"{where}.{key}: {problem}")
    return settings


def _nspawn_settings(raw: dict[str, Any], options: Mapping[str, Any], where: str) -> object:
    from distrogate.nspawn.suite import SuiteConfig

    try:
        return SuiteConfig.from_mapping(raw)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _ipsec_settings(raw: dict[str, Any], options: Mapping[str, Any], where: str) -> object:
    from distrogate.ipsec.settings import parse

    return parse(raw, options, where)


def _dnf_settings(raw: dict[str, Any], options: Mapping[str, Any], where: str) -> object:
    from distrogate.dnf.settings import parse

    return parse(raw, options, where)


def _rollforward_settings(raw: dict[str, Any], options: Mapping[str, Any], where: str
                          ) -> object:
    from distrogate.scenario.settings import parse
    return parse(raw, options, where)


def _fio_settings(raw: dict[str, Any], options: Mapping[str, Any], where: str) -> object:
    from distrogate.fio.settings import parse

    return parse(raw, options, where)


REGISTRY: tuple[Suite, ...] = (
    Suite(name="smoke", test_file="test_smoke.py"),
    Suite(name="collation", test_file="test_collation.py", package="distrogate.collation",
          settings=_collation_settings,
          options=(SuiteOption(
              "--corpus", choices=("quick", "full"),
              help="collation corpus size: quick (CI, ~190 k strings) or full (nightly, "
                   "> 2 million strings); default: the policy's suites.collation.corpus, "
                   "else quick"),)),
    Suite(name="nspawn", test_file="test_nspawn.py", package="distrogate.nspawn",
          aliases=("machinectl",), settings=_nspawn_settings),
    Suite(name="ipsec", test_file="test_ipsec.py", package="distrogate.ipsec",
          settings=_ipsec_settings),
    Suite(name="dnf", test_file="test_dnf.py", package="distrogate.dnf",
          settings=_dnf_settings,
          options=(SuiteOption(
              "--dnf-profile", choices=("quick", "nightly"),
              help="DNF suite profile: quick (CI and the gate: every fault class once, on "
                   "the target where it bites; makecache speed) or nightly (every class on "
                   "every target; makecache and install speed); default: the policy's "
                   "suites.dnf.profile, else quick"),)),
    Suite(name="fio", test_file="test_fio.py", package="distrogate.fio", settings=_fio_settings,
          options=(SuiteOption(
              "--fio-profile", choices=("quick", "nightly"),
              help="fio suite profile: quick (CI: 6 runs per image, 1 s per job after a 1 s ramp) or nightly "
                   "(9 runs, 10 s per job); default: the policy's suites.fio.profile, else "
                   "quick"),)),
    Suite(name="rollforward", test_file="test_rollforward.py", package="distrogate.scenario",
          aliases=("roll-forward",), settings=_rollforward_settings),
)

#: Every name and alias → its suite.
BY_NAME: dict[str, Suite] = {n: s for s in REGISTRY for n in s.names}
#: The shipped suites by name (no aliases).
SUITES: dict[str, Suite] = {s.name: s for s in REGISTRY}


def find_suite(name: str) -> Suite | None:
    """The shipped suite called ``name`` (a name or an alias), or None."""
    return BY_NAME.get(name)


def canonical_name(name: str) -> str:
    """``name`` with an alias replaced by the suite's name (``machinectl`` → ``nspawn``);
    any other name unchanged."""
    suite = BY_NAME.get(name)
    return suite.name if suite is not None else name


def known_names() -> list[str]:
    """The shipped suites' names, each alias after its suite (``nspawn (machinectl)``)."""
    return [s.name + (f" ({', '.join(s.aliases)})" if s.aliases else "") for s in REGISTRY]


def all_options() -> list[SuiteOption]:
    """Every pytest option of every shipped suite."""
    return [option for suite in REGISTRY for option in suite.options]


class _OptionParser(argparse.ArgumentParser):
    """argparse that raises :class:`InputError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing usage and exiting."""
        raise InputError(message)


def options_from_args(args: Iterable[str]) -> dict[str, Any]:
    """The suites' option values found in pytest arguments (``--corpus full``,
    ``--corpus=full``); a value outside an option's choices is an :class:`InputError`."""
    args = list(args)
    if args[:1] == ["--"]:
        args = args[1:]
    parser = _OptionParser(add_help=False, exit_on_error=False, allow_abbrev=False)
    for option in all_options():
        parser.add_argument(option.flag, default=option.default)
    try:
        known, _ = parser.parse_known_args(args)
    except argparse.ArgumentError as exc:
        raise InputError(str(exc)) from None
    values = vars(known)
    for option in all_options():
        value = values.get(option.dest)
        if value is not None and option.choices and value not in option.choices:
            raise InputError(f"{option.flag} {value}: expected one of "
                             f"{', '.join(option.choices)}")
    return values


def settings_for(policy: Policy, name: str, options: Mapping[str, Any] | None = None) -> object:
    """The typed settings of suite ``name`` (an alias too) under ``policy``: the suite's
    dataclass for a shipped suite (None for one without settings), the plain policy mapping for
    a suite of your own. Raises :class:`InputError` naming the policy file and the key."""
    suite = find_suite(name)
    raw = policy.suite_config(canonical_name(name))
    if suite is None:
        return raw
    try:
        return suite.parse_settings(raw, options, f"suites.{suite.name}")
    except InputError as exc:
        raise InputError(f"{policy.source}: {exc}") from None


def validate_settings(policy: Policy, selected: Iterable[str],
                      options: Mapping[str, Any] | None = None) -> dict[str, object]:
    """Check the policy's ``suites:`` sections; raises :class:`InputError` naming the policy
    file, the key and the problem. A section for a suite that is neither shipped nor selected
    in this run is a typo. Returns the typed settings of every shipped suite in ``selected``
    and of every section (by suite name)."""
    chosen = {canonical_name(n) for n in selected}
    for name in policy.suites:
        if name not in SUITES and name not in chosen:
            raise InputError(f"{policy.source}: key 'suites.{name}': no such suite "
                             f"(shipped: {', '.join(known_names())})")
    typed: dict[str, object] = {}
    for name in sorted(chosen | set(policy.suites)):
        typed[name] = settings_for(policy, name, options)
    return typed


def plain(value: Any) -> Any:
    """Settings as plain JSON data (dataclasses → mappings, tuples → lists, enums → values)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def suite_file(name: str, suites_dir: Path) -> Path | None:
    """The test file of the shipped suite ``name`` (an alias too) in ``suites_dir``, if any."""
    suite = find_suite(name)
    if suite is None:
        return None
    path = suites_dir / suite.test_file
    return path if path.exists() else None
