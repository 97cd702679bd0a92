"""The collation suite's settings: the policy's ``suites: {collation: {...}}`` section.

Keys (all optional):

``locales``
    Locale names to check (policy spelling, e.g. ``en_US.UTF-8``), or ``all`` (the default):
    every locale the baseline image ships.
``blocking_locales``
    Locales whose changes gate the image: ``all`` (the default: every checked locale blocks,
    and the advisory group is empty), or a list (policy spelling; ``C.UTF-8`` and ``C.utf8``
    are one name). Every other checked locale is advisory. Must be among ``locales`` when that
    is a list.
``corpus``
    ``quick`` (default) or ``full``; the pytest option ``--corpus`` overrides it.
``dedupe``
    Sort one locale per group of byte-identical LC_COLLATE+LC_CTYPE files (default true).
``jobs``
    Sorter processes per guest (default 2).
``hypothesis_examples``
    Random string lists tried per run of the property test (default 25).
``strcoll_stride``
    Which adjacent pairs of each sorted order strcoll_l verifies: every pair, except that of
    the pairs with a supplementary-plane character (glibc's strcoll is ~30x slower on those)
    and of the pairs of two single ideographs or syllables (U+3400 on) only every N-th is
    (default 256); 1 verifies every pair, 0 none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distrogate.collation.compare import STRCOLL_STRIDE
from distrogate.collation.corpus import SIZES
from distrogate.collation.guest import normalize_locale
from distrogate.errors import InputError
from distrogate.settingfields import flag

KEYS = ("locales", "blocking_locales", "corpus", "dedupe", "jobs", "hypothesis_examples",
        "strcoll_stride")


@dataclass(frozen=True)
class CollationSettings:
    """Validated settings; ``locales`` None means all the baseline ships."""

    locales: tuple[str, ...] | None = None
    blocking: tuple[str, ...] | None = None  # None means all
    corpus: str = "quick"
    dedupe: bool = True
    jobs: int = 2
    hypothesis_examples: int = 25
    strcoll_stride: int = STRCOLL_STRIDE

    def is_blocking(self, locale: str) -> bool:
        """Whether a change in ``locale`` (a ``locale -a`` name) gates the image."""
        if self.blocking is None:
            return True
        return normalize_locale(locale) in {normalize_locale(b) for b in self.blocking}


def parse_settings(raw: dict[str, Any] | None, *, corpus_override: str | None = None,
                   where: str = "policy suites.collation") -> CollationSettings:
    """Validate the policy section; raises :class:`InputError` naming the bad key."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    locales = _locale_list(raw.get("locales", "all"), f"{where}.locales")
    blocking = _locale_list(raw.get("blocking_locales", "all"), f"{where}.blocking_locales")
    if locales is not None and blocking is not None:
        chosen = {normalize_locale(n) for n in locales}
        outside = [b for b in blocking if normalize_locale(b) not in chosen]
        if outside:
            raise InputError(f"{where}.blocking_locales: {', '.join(outside)} not in "
                             f"{where}.locales")
    corpus = corpus_override or raw.get("corpus", "quick")
    if corpus not in SIZES:
        raise InputError(f"{where}.corpus: {corpus!r} is not one of {', '.join(SIZES)}")
    dedupe = flag(raw, "dedupe", True, where)
    jobs = raw.get("jobs", 2)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= 16:
        raise InputError(f"{where}.jobs: expected an integer from 1 to 16, got {jobs!r}")
    examples = raw.get("hypothesis_examples", 25)
    if not isinstance(examples, int) or isinstance(examples, bool) or not 0 <= examples <= 10000:
        raise InputError(f"{where}.hypothesis_examples: expected an integer from 0 to 10000, "
                         f"got {examples!r}")
    stride = raw.get("strcoll_stride", STRCOLL_STRIDE)
    if not isinstance(stride, int) or isinstance(stride, bool) or not 0 <= stride <= 1 << 20:
        raise InputError(f"{where}.strcoll_stride: expected an integer from 0 to {1 << 20}, "
                         f"got {stride!r}")
    return CollationSettings(locales, blocking, str(corpus), dedupe, jobs, examples, stride)


def _locale_list(value: Any, where: str) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"{where}: expected 'all' or a list of locale names, got {value!r}")
    for name in value:
        normalize_locale(name)  # raises for malformed names
    return tuple(v.strip() for v in value)
