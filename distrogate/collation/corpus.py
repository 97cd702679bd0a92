"""The collation corpus: deterministic, versioned sets of short strings to sort.

Every assigned Unicode code point (by Python's ``unicodedata``; surrogates, private use and NUL
left out) appears in short contexts: alone, doubled, with letters, digits, punctuation and spaces
before and after, inside a word, next to CJK and Hangul characters. Plain ASCII strings (every
printable character and pair, and seeded pseudo-random words) show whether ASCII text is
affected. Two sizes:

``quick``
    For CI: every assigned code point at least once. Code points of the Basic Multilingual
    Plane outside the big uniform ranges come in three contexts. *Sparse* code points -- the
    big uniform ranges (CJK and Tangut ideographs, Hangul and Yi syllables, hieroglyphs,
    cuneiform, ...) and the supplementary planes (historic scripts, symbols; glibc's strxfrm
    and strcoll are ~40x slower on them in iso14651_t1 locales) -- come once each, alone (a
    character that moves moves its one-character string), and every 48th also in a second
    context. Plus the ASCII set: about 190 k strings.
``full``
    For nightly runs: every assigned code point in all contexts (over 2 million strings).

The same version, size and Unicode version always give the same bytes (:attr:`Corpus.digest`).
Strategies for random strings (hypothesis) are in :mod:`distrogate.collation.strategies`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import random
import unicodedata
from dataclasses import dataclass

from distrogate.collation.blocks import block_of
from distrogate.errors import InputError

#: Bump whenever the corpus content changes for the same size and Unicode version.
CORPUS_VERSION = 2
SIZES = ("quick", "full")
#: Subject of strings that are not about one code point (the ASCII set).
NO_SUBJECT = -1

#: Contexts for each code point ``{c}``; quick uses the first three.
FULL_CONTEXTS = ("{c}", "a{c}", "ab{c}cd", "{c}a", "{c}{c}", "A{c}", "{c}z", "1{c}", "{c}9",
                 " {c}", "{c} ", "-{c}", "{c}.", "中{c}", "{c}한")
QUICK_CONTEXTS = FULL_CONTEXTS[:3]
#: Every sparse code point (see :func:`is_sparse`) appears alone in ``quick``; every
#: BULK_QUICK_STRIDE-th one also in the further contexts of BULK_QUICK_CONTEXTS.
BULK_QUICK_CONTEXTS = ("{c}", "a{c}")
BULK_QUICK_STRIDE = 48
#: Name prefixes of the Unicode blocks that are large ranges of interchangeable characters
#: (by block, not by character name: Python's unicodedata names no Tangut ideograph).
BULK_BLOCK_PREFIXES = ("CJK Unified Ideographs", "CJK Compatibility Ideographs",
                       "Hangul Syllables", "Tangut", "Khitan Small Script", "Nushu",
                       "Yi Syllables", "Egyptian Hieroglyph", "Cuneiform",
                       "Early Dynastic Cuneiform", "Anatolian Hieroglyphs", "Bamum")
ASCII_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
_WORD_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,'/"
ASCII_WORDS = 4000
SEED = 20240517


@dataclass(frozen=True)
class Corpus:
    """A corpus: the strings, each string's subject code point, and its identity."""

    size: str
    strings: tuple[str, ...]
    subjects: tuple[int, ...]  # the code point a string was made for, or NO_SUBJECT
    unicode_version: str

    @property
    def corpus_id(self) -> str:
        """``v<version>-<size>-u<unicode version>``: names the corpus in reports."""
        return f"v{CORPUS_VERSION}-{self.size}-u{self.unicode_version}"

    def __len__(self) -> int:
        return len(self.strings)

    @functools.cached_property
    def data(self) -> bytes:
        """The strings as NUL-terminated UTF-8 (the sorter's input)."""
        return b"".join(s.encode() + b"\0" for s in self.strings)

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of :attr:`data`."""
        return hashlib.sha256(self.data).hexdigest()

    def gzipped(self) -> bytes:
        """:attr:`data`, gzip-compressed (deterministically: no timestamp) for the transfer."""
        return gzip.compress(self.data, compresslevel=6, mtime=0)

    @functools.cached_property
    def ascii_mask(self) -> tuple[bool, ...]:
        """For each string, whether it is plain ASCII."""
        return tuple(s.isascii() for s in self.strings)

    def summary(self) -> dict[str, object]:
        """Identity and size, as reports show them."""
        return {"id": self.corpus_id, "strings": len(self), "sha256": self.digest,
                "unicode": self.unicode_version,
                "code_points": len({s for s in self.subjects if s != NO_SUBJECT})}


def assigned_code_points() -> list[int]:
    """Every assigned code point usable in a C string: not Cn, Cs (surrogates), Co or NUL."""
    return [cp for cp in range(1, 0x110000)
            if unicodedata.category(chr(cp)) not in ("Cn", "Cs", "Co")]


def is_bulk(code_point: int) -> bool:
    """Whether ``code_point`` is in a large range of interchangeable characters."""
    return block_of(code_point).startswith(BULK_BLOCK_PREFIXES)


def is_sparse(code_point: int) -> bool:
    """Whether ``quick`` gives ``code_point`` one string (alone) rather than three contexts:
    bulk ranges and the supplementary planes."""
    return code_point > 0xFFFF or is_bulk(code_point)


def ascii_strings(seed: int = SEED, words: int = ASCII_WORDS) -> list[str]:
    """Printable ASCII: every character, every pair, and ``words`` seeded pseudo-random words."""
    out = list(ASCII_PRINTABLE)
    out += [a + b for a in ASCII_PRINTABLE for b in ASCII_PRINTABLE]
    rng = random.Random(seed)
    for _ in range(words):
        out.append("".join(rng.choice(_WORD_ALPHABET) for _ in range(rng.randint(3, 10))))
    return out


@functools.lru_cache(maxsize=2)
def build_corpus(size: str = "quick") -> Corpus:
    """Build the corpus of ``size`` (``quick`` or ``full``); deterministic and cached."""
    if size not in SIZES:
        raise InputError(f"collation corpus size {size!r}: expected one of {', '.join(SIZES)}")
    seen: dict[str, int] = {}

    def add(text: str, subject: int) -> None:
        if text not in seen:
            seen[text] = subject

    for text in ascii_strings():
        add(text, ord(text) if len(text) == 1 else NO_SUBJECT)
    bulk_index = 0
    for cp in assigned_code_points():
        if size == "full":
            contexts: tuple[str, ...] = FULL_CONTEXTS
        elif is_sparse(cp):
            bulk_index += 1
            contexts = BULK_QUICK_CONTEXTS[:1 if bulk_index % BULK_QUICK_STRIDE else None]
        else:
            contexts = QUICK_CONTEXTS
        for context in contexts:
            add(context.replace("{c}", chr(cp)), cp)
    return Corpus(size=size, strings=tuple(seen), subjects=tuple(seen.values()),
                  unicode_version=unicodedata.unidata_version)


def corpus_from_strings(strings: list[str], size: str = "adhoc") -> Corpus:
    """A corpus of given strings (deduplicated, order kept); subjects are their first non-ASCII
    code point. Strings must not contain NUL."""
    unique = list(dict.fromkeys(strings))
    for s in unique:
        if "\0" in s:
            raise InputError(f"collation corpus: string {s!r} contains NUL")
    subjects = tuple(next((ord(ch) for ch in s if not ch.isascii()), NO_SUBJECT) for s in unique)
    return Corpus(size=size, strings=tuple(unique), subjects=subjects,
                  unicode_version=unicodedata.unidata_version)
