"""Hypothesis strategies for random strings to sort (their failing examples are shrunk).

Strings never contain NUL (C strings), surrogates or unassigned/private-use code points; the
mix leans towards Latin letters with diacritics, digits, punctuation and spaces, where most
real-world keys live, with any assigned character possible.
"""

from __future__ import annotations

from hypothesis import strategies as st

_COMMON = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,'/"
           "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝŒœŠšŽžıİğĞşŞ"
           "αβγδΑΒΓΔабвгдАБВГДёЁ中文日本語한국어")


def characters() -> st.SearchStrategy[str]:
    """Single characters: mostly common ones, sometimes any assigned code point."""
    anything = st.characters(exclude_categories=("Cs", "Co", "Cn"), exclude_characters="\0")
    return st.one_of(st.sampled_from(_COMMON), st.sampled_from(_COMMON), anything)


def sort_keys(max_size: int = 8) -> st.SearchStrategy[str]:
    """One short string, as a database column might hold."""
    return st.text(alphabet=characters(), min_size=1, max_size=max_size)


def string_lists(min_size: int = 2, max_size: int = 40) -> st.SearchStrategy[list[str]]:
    """A list of distinct short strings to sort."""
    return st.lists(sort_keys(), min_size=min_size, max_size=max_size, unique=True)
