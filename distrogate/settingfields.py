"""Reading a suite's policy section (``suites.<name>``) into typed values: each reader takes the
raw mapping, the key, its default and ``where`` (the section's place in the policy, such as
``suites.ipsec``), and raises :class:`InputError` naming ``<where>.<key>`` and the problem."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from distrogate.errors import InputError


def section(raw: Any, keys: Iterable[str], where: str) -> Mapping[str, Any]:
    """``raw`` checked to be a mapping of known ``keys`` only."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping, got {raw!r}")
    known = list(keys)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
    return raw


def choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str,
           where: str) -> str:
    """One of ``choices``."""
    value = raw.get(key, default)
    if value not in choices:
        raise InputError(f"{where}.{key}: unknown {key.replace('_', ' ')} {value!r} "
                         f"(expected one of {', '.join(choices)})")
    return str(value)


def number(raw: Mapping[str, Any], key: str, default: float, low: float, high: float,
           where: str) -> float:
    """A number from ``low`` to ``high`` (a bool is not a number)."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InputError(f"{where}.{key}: expected a number from {low:g} to {high:g}, "
                         f"got {value!r}")
    return float(value)


def integer(raw: Mapping[str, Any], key: str, default: int, low: int, high: int,
            where: str) -> int:
    """A whole number from ``low`` to ``high``."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{where}.{key}: expected a whole number from {low} to {high}, "
                         f"got {value!r}")
    return value


def flag(raw: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    """A yes/no setting (YAML ``true`` or ``false``)."""
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def names(raw: Mapping[str, Any], key: str, known: Iterable[str], where: str, *,
          what: str = "", allow_all: bool = False, allow_none: bool = False
          ) -> tuple[str, ...]:
    """A non-empty list of names out of ``known``, in ``known``'s order (default: all of
    them; with ``allow_all`` the word ``all`` says the same; with ``allow_none`` an empty
    list is allowed too). ``what`` names one item in the error (default: the key without its
    plural s)."""
    order = tuple(known)
    noun = what or key.removesuffix("s")
    value = raw.get(key, "all" if allow_all else list(order))
    if allow_all and value == "all":
        return order
    if (not isinstance(value, list | tuple) or (not value and not allow_none)
            or not all(isinstance(name, str) for name in value)):
        also = " or 'all'" if allow_all else ""
        size = "a" if allow_none else "a non-empty"
        raise InputError(f"{where}.{key}: expected {size} list of {noun}s{also}, "
                         f"got {value!r}")
    for name in value:
        if name not in order:
            raise InputError(f"{where}.{key}: unknown {noun} {name!r} "
                             f"(known: {', '.join(order)})")
    return tuple(n for n in order if n in value)
