"""Unit tests of the collation logic that needs no VM (corpus, diff, blocks, settings, sorter)."""

from __future__ import annotations

import itertools
import struct
import subprocess
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrogate.collation import guest as g
from distrogate.collation.blocks import NO_BLOCK, block_of, count_blocks
from distrogate.collation.compare import group_representatives
from distrogate.collation.corpus import (
    NO_SUBJECT,
    assigned_code_points,
    build_corpus,
    corpus_from_strings,
    is_bulk,
)
from distrogate.collation.diff import diff_orders, longest_increasing, show
from distrogate.collation.settings import parse_settings
from distrogate.collation.sorter import MAX_GLIBC, build_sorter, required_glibc
from distrogate.errors import InputError


# -- corpus ---------------------------------------------------------------------------------
def test_quick_corpus_is_deterministic_and_covers_every_non_bulk_code_point() -> None:
    a = build_corpus.__wrapped__("quick")
    b = build_corpus.__wrapped__("quick")
    assert a.digest == b.digest and a.corpus_id.startswith("v1-quick-u")
    singles = {ord(s) for s in a.strings if len(s) == 1}
    wanted = {cp for cp in assigned_code_points() if not is_bulk(cp)}
    assert wanted <= singles
    assert 50_000 < len(a) < 200_000
    assert len(set(a.strings)) == len(a)
    assert all("\0" not in s for s in a.strings)
    assert a.data.count(b"\0") == len(a)


def test_full_corpus_has_every_assigned_code_point_and_two_million_strings() -> None:
    full = build_corpus("full")
    assert len(full) >= 2_000_000
    subjects = set(full.subjects) - {NO_SUBJECT}
    assert subjects == set(assigned_code_points())
    assert 0xD800 not in subjects and 0xE000 not in subjects and 0 not in subjects


def test_unknown_corpus_size_is_an_input_error() -> None:
    with pytest.raises(InputError, match="quick, full"):
        build_corpus("huge")


def test_corpus_from_strings_rejects_nul_and_dedupes() -> None:
    c = corpus_from_strings(["b", "a", "b", "ö"])
    assert c.strings == ("b", "a", "ö") and c.subjects == (NO_SUBJECT, NO_SUBJECT, 0xF6)
    with pytest.raises(InputError):
        corpus_from_strings(["a\0b"])


# -- blocks ---------------------------------------------------------------------------------
def test_block_of_known_code_points() -> None:
    assert block_of(ord("a")) == "Basic Latin"
    assert block_of(0xF6) == "Latin-1 Supplement"
    assert block_of(0x0E01) == "Thai"
    assert block_of(0x4E2D) == "CJK Unified Ideographs"
    assert block_of(0x2FE0) == NO_BLOCK  # between Ideographic Description and CJK Symbols
    assert count_blocks([0x41, 0x42, 0xF6]) == {"Basic Latin": 2, "Latin-1 Supplement": 1}


# -- diff -----------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50)))
def test_longest_increasing_is_increasing_and_as_long_as_brute_force(seq: list[int]) -> None:
    idx = longest_increasing(seq)
    values = [seq[i] for i in idx]
    assert idx == sorted(idx) and all(a < b for a, b in itertools.pairwise(values))
    # patience-sorting length bound check by O(n^2) dynamic programming
    best = [1] * len(seq)
    for i in range(len(seq)):
        for j in range(i):
            if seq[j] < seq[i]:
                best[i] = max(best[i], best[j] + 1)
    assert len(idx) == max(best, default=0)


def _sorted_order(strings: list[str], key: Callable[[str], str]) -> list[int]:
    return sorted(range(len(strings)), key=lambda i: key(strings[i]))


def test_diff_names_the_moved_code_points_blocks_and_examples() -> None:
    strings = ["a", "o", "p", "q", "r", "s", "z", "ö", "aö", "ap", "aq", "az", "Ö", "1", "b"]
    corpus = corpus_from_strings(strings)
    base = _sorted_order(strings, lambda s: s.replace("ö", "o~").replace("Ö", "O~"))
    cand = _sorted_order(strings, lambda s: s.replace("ö", "z~").replace("Ö", "Z~"))
    d = diff_orders(base, cand, corpus)
    assert d.changed
    moved = {corpus.strings[i] for i in d.moved}
    assert moved <= {"ö", "Ö", "aö"} and moved
    assert 0xF6 in d.code_points
    assert "Latin-1 Supplement" in d.blocks
    assert not d.ascii_affected
    assert d.examples and "U+00F6" in " ".join(f.describe() for f in d.examples)
    assert "now sorts before" in d.examples[0].describe()


def test_diff_of_identical_orders_is_empty_and_ascii_swaps_are_detected() -> None:
    strings = ["a", "B", "c"]
    corpus = corpus_from_strings(strings)
    same = diff_orders([0, 1, 2], [0, 1, 2], corpus)
    assert not same.changed and not same.moved
    swapped = diff_orders([0, 1, 2], [1, 0, 2], corpus)
    assert swapped.ascii_affected and len(swapped.moved) == 1
    assert swapped.ascii_flips


def test_diff_counts_strings_only_one_image_can_sort() -> None:
    corpus = corpus_from_strings(["a", "b", "c"])
    d = diff_orders([0, 1, 2], [0, 2], corpus)
    assert d.only_in_baseline == 1 and d.compared == 2 and d.changed


def test_show_marks_invisible_characters() -> None:
    assert show("ö") == "'ö' (U+00F6)"
    assert "\\u200b" in show("\u200b")


# -- locale names, settings, grouping --------------------------------------------------------
@pytest.mark.parametrize(("name", "norm"), [
    ("en_US.UTF-8", "en_US.utf8"), ("C.UTF-8", "C.utf8"), ("de_DE.ISO-8859-1", "de_DE.iso88591"),
    ("aa_ER@saaho", "aa_ER@saaho"), ("sr_RS.UTF-8@latin", "sr_RS.utf8@latin"), ("POSIX", "POSIX")])
def test_normalize_locale(name: str, norm: str) -> None:
    assert g.normalize_locale(name) == norm


def test_select_locales_maps_policy_spelling_and_rejects_unknown_names() -> None:
    available = ["C", "C.utf8", "de_DE", "de_DE.utf8", "en_US.utf8"]
    assert g.select_locales(available, ["en_US.UTF-8", "C.UTF-8"]) == ["en_US.utf8", "C.utf8"]
    assert g.select_locales(available, None) == available
    with pytest.raises(InputError, match=r"xx_YY\.UTF-8"):
        g.select_locales(available, ["en_US.UTF-8", "xx_YY.UTF-8"])


def test_settings_validation() -> None:
    s = parse_settings({"locales": ["en_US.UTF-8", "de_DE.UTF-8"],
                        "blocking_locales": ["en_US.UTF-8"]}, corpus_override="full")
    assert s.corpus == "full" and s.is_blocking("en_US.utf8") and not s.is_blocking("de_DE.utf8")
    assert parse_settings(None).locales is None
    assert parse_settings({"blocking_locales": "all"}).is_blocking("th_TH.utf8")
    cases: list[dict[str, Any]] = [
        {"locale": []}, {"corpus": "huge"}, {"locales": "some"}, {"jobs": 0},
        {"locales": ["en_US.UTF-8"], "blocking_locales": ["de_DE.UTF-8"]}]
    for bad in cases:
        with pytest.raises(InputError):
            parse_settings(bad)


def test_group_representatives_groups_identical_files_only() -> None:
    hashes = {"a": {"LC_COLLATE": "1", "LC_CTYPE": "x"}, "b": {"LC_COLLATE": "1", "LC_CTYPE": "x"},
              "c": {"LC_COLLATE": "1", "LC_CTYPE": "y"}, "d": {"LC_COLLATE": "2", "LC_CTYPE": "x"}}
    reps = group_representatives(["C", "a", "b", "c", "d"], hashes)
    assert reps == {"C": "C", "a": "a", "b": "a", "c": "c", "d": "d"}


def test_parse_file_hashes_follows_links() -> None:
    text = ("L ./de_AT.utf8/LC_COLLATE\t../de_DE.utf8/LC_COLLATE\n"
            "L ./de_AT.utf8/LC_MESSAGES\t../de_DE.utf8/LC_MESSAGES\n"
            "aaa  ./de_DE.utf8/LC_COLLATE\n"
            "bbb  ./de_DE.utf8/LC_MESSAGES/SYS_LC_MESSAGES\n"
            "ccc  ./de_AT.utf8/LC_TIME\n")
    out = g.parse_file_hashes(text)
    assert out["de_AT.utf8"] == {"LC_COLLATE": "aaa", "LC_MESSAGES": "bbb", "LC_TIME": "ccc"}
    assert out["de_DE.utf8"] == {"LC_COLLATE": "aaa", "LC_MESSAGES": "bbb"}


# -- the sorter binary, on the host's own glibc -----------------------------------------------
def test_sorter_builds_with_old_symbols_and_sorts_on_the_host(tmp_path: Path) -> None:
    binary = build_sorter(tmp_path)
    dump = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert required_glibc(dump) <= MAX_GLIBC
    strings = ["b", "a", "ö", "z", "B"]
    order_file = tmp_path / "order"
    out = subprocess.run([str(binary), "-j", "2", "-O", f"C.UTF-8:{order_file}", "-",
                          "C.UTF-8", "C", "xx_YY.UTF-8"],
                         input=b"".join(s.encode() + b"\0" for s in strings),
                         capture_output=True, check=True, timeout=60).stdout.decode()
    rows = {r.locale: r for r in g.parse_results(out)}
    assert rows["C.UTF-8"].ok and rows["C.UTF-8"].included == 5
    assert rows["C"].included == 4  # 'ö' cannot be encoded in ASCII
    assert rows["xx_YY.UTF-8"].status == "missing"
    order = struct.unpack("<5I", order_file.read_bytes())
    assert [strings[i] for i in order] == ["B", "a", "b", "z", "ö"]  # code point order
    assert rows["C.UTF-8"].fingerprint != rows["C"].fingerprint


def test_sorter_orders_keys_that_share_long_prefixes(tmp_path: Path) -> None:
    """Keys equal in their first 16 bytes (kept in the item) are ordered by the rest."""
    binary = build_sorter(tmp_path)
    stem = "x" * 40
    strings = [stem + "b", stem + "a", stem, stem + "ab", "x" * 20, stem + "a" * 3, "y"]
    order_file = tmp_path / "order"
    subprocess.run([str(binary), "-O", f"C.UTF-8:{order_file}", "-", "C.UTF-8"],
                   input=b"".join(s.encode() + b"\0" for s in strings), capture_output=True,
                   check=True, timeout=60)
    order = struct.unpack(f"<{len(strings)}I", order_file.read_bytes())
    assert [strings[i] for i in order] == sorted(strings)


def test_sorter_builds_once_when_asked_from_two_threads(tmp_path: Path) -> None:
    """Both images of a pair ask for the sorter at the same moment: one binary, no error."""
    with ThreadPoolExecutor(4) as pool:
        binaries = list(pool.map(lambda _: build_sorter(tmp_path), range(4)))
    assert len(set(binaries)) == 1 and binaries[0].is_file()
    built = [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
    assert built == [binaries[0].parent.name]  # no temporaries


def test_required_glibc_parses_objdump() -> None:
    text = "0 DF *UND* 0 (GLIBC_2.2.5) qsort\n0 DF *UND* 0 (GLIBC_2.34) __libc_start_main\n"
    assert required_glibc(text) == (2, 34)
    assert unicodedata.unidata_version  # the corpus records it
