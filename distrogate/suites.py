"""The suite registry: each shipped suite's name and how its policy settings are validated.

The gate checks every ``suites.<name>`` section of the policy here, before anything is built or
booted, so that a bad setting is one line with exit 3 and not an error in the middle of a run.
A suite of your own (``--suite ./test_kafka.py``) may have a section too; it is handed to the
suite as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from distrogate.errors import InputError
from distrogate.policy import Policy


def _collation(config: dict[str, Any], where: str) -> None:
    from distrogate.collation.known import unknown_locale_problem
    from distrogate.collation.settings import parse_settings

    parse_settings(config, where=where)
    for key in ("locales", "blocking_locales"):
        names = config.get(key, "all")
        for name in names if isinstance(names, list) else []:
            problem = unknown_locale_problem(name)
            if problem:
                raise InputError(f"{where}.{key}: {problem}")


def _nspawn(config: dict[str, Any], where: str) -> None:
    from distrogate.nspawn.suite import SuiteConfig

    try:
        SuiteConfig.from_mapping(config)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _no_settings(config: dict[str, Any], where: str) -> None:
    if config:
        raise InputError(f"{where}: this suite has no settings, got {', '.join(config)}")


SUITES: dict[str, Callable[[dict[str, Any], str], None]] = {
    "smoke": _no_settings,
    "collation": _collation,
    "nspawn": _nspawn,
}


def validate_settings(policy: Policy, selected: Iterable[str]) -> None:
    """Check the policy's ``suites:`` sections; raises :class:`InputError` naming the policy
    file, the key and the problem. A section for a suite that is neither shipped nor selected
    in this run is a typo."""
    chosen = set(selected)
    for name in policy.suites:
        where = f"{policy.source}: key 'suites.{name}'"
        if name not in SUITES and name not in chosen:
            raise InputError(f"{where}: no such suite (shipped: {', '.join(SUITES)})")
        check = SUITES.get(name)
        if check is not None:
            try:
                check(policy.suite_config(name), f"suites.{name}")
            except InputError as exc:
                raise InputError(f"{policy.source}: {exc}") from None
