"""Locale names glibc knows, for checking a policy before anything is built or booted.

The list (``known_locales.txt``) is glibc's SUPPORTED list joined with the locales Debian ships
in bookworm and trixie, names normalized as glibc normalizes a codeset (``UTF-8`` → ``utf8``).
A name outside it is a typo or a locale no image of these releases can ship; whether the
baseline really ships a known name is checked again once it boots.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^([^.@/\s]+)(?:\.([^@/\s]+))?(?:@([^/\s]+))?$")


def normalize(name: str) -> str:
    """``de_DE.UTF-8`` → ``de_DE.utf8``: the codeset lowercased, non-alphanumerics dropped, an
    all-digit codeset prefixed ``iso`` (glibc's ``_nl_normalize_codeset``)."""
    match = _NAME.match(name.strip())
    if match is None:
        return name.strip()
    base, codeset, modifier = match.groups()
    out = base
    if codeset:
        cleaned = "".join(ch for ch in codeset.lower() if ch.isalnum())
        out += "." + ("iso" + cleaned if cleaned.isdigit() else cleaned)
    if modifier:
        out += "@" + modifier
    return out


@cache
def known_locales() -> frozenset[str]:
    """The normalized names of every locale glibc of the supported releases knows."""
    text = resources.files("distrogate").joinpath("collation/known_locales.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def unknown_locale_problem(name: str) -> str | None:
    """Why ``name`` cannot be a locale (with a close known name), or None if it is known."""
    if normalize(name) in known_locales():
        return None
    close = difflib.get_close_matches(normalize(name), sorted(known_locales()), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{name!r} is not a locale glibc knows{hint}"
