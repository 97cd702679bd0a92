"""Unit tests of the collation logic that needs no VM (corpus, diff, blocks, settings, sorter,
locale names, locale-archive, strcoll verification).

Locale data for the sorter and archive tests is compiled on the host with glibc's own
``localedef`` (this machine's glibc and /usr/share/i18n), in a temporary folder."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrogate.collation import archive
from distrogate.collation import guest as g
from distrogate.collation.blocks import NO_BLOCK, block_of, count_blocks
from distrogate.collation.compare import (
    STRCOLL_STRIDE,
    LocaleOutcome,
    Survey,
    _outcomes,
    group_representatives,
    own_names,
)
from distrogate.collation.corpus import (
    CORPUS_VERSION,
    NO_SUBJECT,
    assigned_code_points,
    build_corpus,
    corpus_from_strings,
    is_bulk,
    is_sparse,
)
from distrogate.collation.diff import diff_orders, longest_increasing, show
from distrogate.collation.settings import parse_settings
from distrogate.collation.sorter import MAX_GLIBC, build_sorter, required_glibc
from distrogate.differential import DeltaStatus, ElementSet
from distrogate.errors import GuestError, InputError


# -- corpus ---------------------------------------------------------------------------------
def test_quick_corpus_is_deterministic_and_has_every_assigned_code_point_alone() -> None:
    a = build_corpus.__wrapped__("quick")
    b = build_corpus.__wrapped__("quick")
    assert a.digest == b.digest and a.corpus_id.startswith(f"v{CORPUS_VERSION}-quick-u")
    assert CORPUS_VERSION >= 2  # v1 sampled the bulk ranges
    singles = {ord(s) for s in a.strings if len(s) == 1}
    every = set(assigned_code_points())
    assert every - singles == set()  # bulk ranges included: each bulk code point alone
    assert set(a.subjects) - {NO_SUBJECT} == every
    assert a.summary()["code_points"] == len(every)
    # cheap contexts for the sparse code points: alone, and every 48th also after "a"
    sparse = [cp for cp in sorted(every) if is_sparse(cp)]
    assert len(sparse) > 120_000 and all(is_sparse(cp) for cp in (0x4E00, 0xAC00, 0x17000))
    strings = set(a.strings)
    assert sum(1 for cp in sparse if "a" + chr(cp) in strings) == len(sparse) // 48
    dense = [cp for cp in every if not is_sparse(cp)]
    assert all(f"ab{chr(cp)}cd" in strings for cp in dense)  # three contexts
    assert 180_000 < len(a) < 200_000  # the time budget of the quick pair (see README)
    assert len(set(a.strings)) == len(a)
    assert all("\0" not in s for s in a.strings)
    assert a.data.count(b"\0") == len(a)


def test_bulk_ranges_are_unicode_blocks() -> None:
    assert is_bulk(0x4E00) and is_bulk(0x20000) and is_bulk(0xAC00) and is_bulk(0xA000)
    assert is_bulk(0x17000)  # a Tangut ideograph: Python's unicodedata gives it no name
    assert not is_bulk(ord("a")) and not is_bulk(0x0E01) and not is_bulk(0x1100)  # Thai, jamo
    assert is_sparse(0x1F600) and not is_bulk(0x1F600)  # an emoji: supplementary plane


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


@pytest.mark.parametrize(("codeset", "norm"), [
    ("UTF-8", "utf8"), ("utf8", "utf8"), ("ISO-8859-15", "iso885915"), ("8859-1", "iso88591"),
    ("eucJP", "eucjp"), ("GB18030", "gb18030"), ("KOI8-R", "koi8r"), ("CP1251", "cp1251"),
    ("ÜTF-8", "tf8")])  # non-ASCII letters are not alphanumeric to glibc (C locale isalnum)
def test_normalize_codeset_as_glibc(codeset: str, norm: str) -> None:
    assert g.normalize_codeset(codeset) == norm


@pytest.mark.parametrize(("name", "policy"), [
    ("th_TH.utf8", "th_TH.UTF-8"), ("C.utf8", "C.UTF-8"), ("C.UTF-8", "C.UTF-8"),
    ("de_DE", "de_DE"), ("de_DE.ISO-8859-1", "de_DE.iso88591"), ("C", "C"),
    ("sr_RS.utf8@latin", "sr_RS.UTF-8@latin"), ("aa_ER@saaho", "aa_ER@saaho")])
def test_policy_name_writes_utf8_codesets_as_policies_do(name: str, policy: str) -> None:
    assert g.policy_name(name) == policy


def test_select_locales_maps_policy_spelling_and_rejects_unknown_names() -> None:
    available = ["C", "C.utf8", "de_DE", "de_DE.utf8", "en_US.utf8"]
    assert g.select_locales(available, ["en_US.UTF-8", "C.UTF-8"]) == ["en_US.utf8", "C.utf8"]
    assert g.select_locales(available, None) == available
    with pytest.raises(InputError, match=r"xx_YY\.UTF-8"):
        g.select_locales(available, ["en_US.UTF-8", "xx_YY.UTF-8"])
    bullseye = ["C", "C.UTF-8", "en_US.utf8"]  # bullseye's locale -a spells C.UTF-8
    assert g.select_locales(bullseye, ["C.utf8", "C.UTF-8"]) == ["C.UTF-8"]


def test_own_names_match_spellings_across_images() -> None:
    """bookworm lists C.utf8, bullseye C.UTF-8: one locale, not 'missing'."""
    assert own_names(["C.utf8", "en_US.utf8", "xx_YY.utf8"], ["C.UTF-8", "en_US.UTF-8"]) == {
        "C.utf8": "C.UTF-8", "en_US.utf8": "en_US.UTF-8"}


def _result(name: str, fingerprint: str = "f", disagreements: int = 0) -> g.SortResult:
    return g.SortResult(name, "ok", "UTF-8", 10, 0, fingerprint, 0.1, 9, disagreements, 0.0,
                        ((1, 0),) if disagreements else ())


def test_outcomes_match_locales_and_data_by_normalized_name() -> None:
    """A C.UTF-8 folder on one image and a C.utf8 folder on the other: the same locale, its
    data compared, its order judged (here: changed), nothing missing."""
    data = {"LC_COLLATE": "1", "LC_CTYPE": "2"}
    base = Survey("b", ["C.utf8"], {"C.utf8": data}, {"C.utf8": _result("C.utf8", "f1")},
                  {"C.utf8": "C.utf8"}, 1.0, 1.0, {"C.utf8": "C.utf8"})
    cand = Survey("c", ["C.UTF-8"], {"C.utf8": dict(data, LC_COLLATE="3")},
                  {"C.utf8": _result("C.utf8", "f2")}, {"C.utf8": "C.UTF-8"}, 1.0, 1.0,
                  {"C.utf8": "C.UTF-8"})
    [outcome] = _outcomes(["C.utf8"], base, cand).values()
    assert outcome.status == "changed" and outcome.files_changed == ["LC_COLLATE"]
    assert outcome.name == "C.UTF-8" and outcome.headline().startswith("C.UTF-8: ")


@pytest.mark.parametrize(("base", "cand", "status"), [
    (0, 0, None), (0, 3, DeltaStatus.REGRESSION), (2, 3, DeltaStatus.ALSO_FAILS_ON_BASELINE),
    (2, 0, DeltaStatus.FIXED)])
def test_strcoll_status_judges_the_candidate_against_the_baseline(
        base: int, cand: int, status: DeltaStatus | None) -> None:
    outcome = LocaleOutcome("en_US.utf8", "unchanged", baseline=_result("en_US.utf8", "f", base),
                            candidate=_result("en_US.utf8", "f", cand))
    assert outcome.strcoll_status() == status
    if status is not None:
        line = outcome.strcoll_headline(corpus_from_strings(["2/X", "2x"]))
        assert line.startswith("en_US.UTF-8: strcoll_l disagrees")
        assert f"candidate {cand} of 9 adjacent pairs" in line
        assert f"baseline {base} of 9" in line
    missing = LocaleOutcome("x.utf8", "missing", baseline=_result("x.utf8", "f", 2),
                            candidate=g.SortResult("x.utf8", "missing", "-", 0, 0, "-", 0.0))
    assert missing.strcoll_status() is None


def test_parse_results_reads_strcoll_fields_and_rejects_bad_lines() -> None:
    line = "en_US.utf8\tok\tUTF-8\t5\t1\tabc\t0.5\t4\t2\t0.25\t3,1;0,4\n"
    [row] = g.parse_results(line + "\n")
    assert (row.pairs_checked, row.disagreements, row.strcoll_seconds) == (4, 2, 0.25)
    assert row.disagreement_examples == ((3, 1), (0, 4))
    assert row.standing_for("en_GB.utf8").locale == "en_GB.utf8"
    assert g.parse_pairs("-") == ()
    for bad in ("a\tok\tUTF-8\t5\t1\tabc\t0.5\n",  # the old seven fields
                "a\tok\tUTF-8\t5\t1\tabc\t0.5\t4\t2\t0.25\t3-1\n",
                "a\tok\tUTF-8\tx\t1\tabc\t0.5\t4\t2\t0.25\t-\n"):
        with pytest.raises(GuestError):
            g.parse_results(bad)


def test_settings_validation() -> None:
    s = parse_settings({"locales": ["en_US.UTF-8", "de_DE.UTF-8"],
                        "blocking_locales": ["en_US.UTF-8"]}, corpus_override="full")
    assert s.corpus == "full" and s.is_blocking("en_US.utf8") and not s.is_blocking("de_DE.utf8")
    assert parse_settings(None).locales is None
    assert parse_settings({"blocking_locales": "all"}).is_blocking("th_TH.utf8")
    assert parse_settings({"locales": ["C.utf8"], "blocking_locales": ["C.UTF-8"]}).is_blocking(
        "C.utf8")
    assert parse_settings({"strcoll_stride": 1}).strcoll_stride == 1
    assert parse_settings(None).strcoll_stride == STRCOLL_STRIDE
    cases: list[dict[str, Any]] = [
        {"locale": []}, {"corpus": "huge"}, {"locales": "some"}, {"jobs": 0},
        {"locales": ["en_US.UTF-8"], "blocking_locales": ["de_DE.UTF-8"]},
        {"strcoll_stride": -1}, {"strcoll_stride": "all"}, {"blocking_locales": "some"}]
    for bad in cases:
        with pytest.raises(InputError):
            parse_settings(bad)


def test_group_representatives_groups_identical_files_only() -> None:
    hashes = {"a": {"LC_COLLATE": "1", "LC_CTYPE": "x"}, "b": {"LC_COLLATE": "1", "LC_CTYPE": "x"},
              "c": {"LC_COLLATE": "1", "LC_CTYPE": "y"}, "d": {"LC_COLLATE": "2", "LC_CTYPE": "x"}}
    reps = group_representatives(["C", "a", "b", "c", "d"], hashes)
    assert reps == {"C": "C", "a": "a", "b": "a", "c": "c", "d": "d"}
    # hashes are keyed by normalized name; locale -a may spell it otherwise
    normalized = {"de_DE.utf8": hashes["a"], "de_AT.utf8": hashes["a"]}
    assert group_representatives(["de_DE.UTF-8", "de_AT.utf8"], normalized) == {
        "de_DE.UTF-8": "de_DE.UTF-8", "de_AT.utf8": "de_DE.UTF-8"}


def test_default_settings_make_every_locale_blocking_and_leave_no_advisory_one() -> None:
    settings_ = parse_settings({"locales": "all", "blocking_locales": "all"})
    shipped = ["C", "C.utf8", "de_DE", "th_TH.utf8", "aa_ER@saaho"]
    assert [n for n in shipped if not settings_.is_blocking(n)] == []
    assert [n for n in shipped if not parse_settings({}).is_blocking(n)] == []


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


# -- locale data compiled on the host: strcoll verification, locale-archive ------------------
I18N = Path("/usr/share/i18n/locales")


class HostMachine:
    """The guest verbs :func:`g.locale_file_hashes` uses, carried out on this host for real
    (the same shell script and file reads a guest gets)."""

    name = "host"

    def succeed(self, command: str | list[str], *, timeout: float = 120,
                stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
        """Run ``command`` here; require exit 0."""
        return subprocess.run(command, input=stdin, capture_output=True, check=True,
                              timeout=timeout, shell=isinstance(command, str),
                              env={**os.environ, **(env or {})}).stdout.decode()

    def read_file(self, guest_path: str, *, timeout: float = 300) -> bytes:
        """Read a file here."""
        return Path(guest_path).read_bytes()


def _localedef(*args: str) -> None:
    subprocess.run(["localedef", *args], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """de_DE.UTF-8 and en_US.UTF-8 compiled by this host's localedef: per-locale folders under
    ``folders/``, the same folders added to ``added/locale-archive``, and de_DE compiled
    straight into ``direct/locale-archive`` (as locale-gen does)."""
    if shutil.which("localedef") is None or not (I18N / "de_DE").is_file():
        pytest.skip("needs localedef and glibc's locale sources (apt-get install locales)")
    root = tmp_path_factory.mktemp("locales")
    folders = root / "folders"
    folders.mkdir()
    for name in ("de_DE", "en_US"):
        _localedef("--no-archive", "-i", name, "-f", "UTF-8", str(folders / f"{name}.UTF-8"))
    for prefix in ("added", "direct"):
        (root / prefix / "usr/lib/locale").mkdir(parents=True)
    _localedef("--prefix", str(root / "added"), "--add-to-archive",
               str(folders / "de_DE.UTF-8"), str(folders / "en_US.UTF-8"))
    _localedef("--prefix", str(root / "direct"), "-i", "de_DE", "-f", "UTF-8", "de_DE.UTF-8")
    for prefix in ("added", "direct"):
        (root / prefix / "usr/lib/locale/locale-archive").rename(root / prefix / "locale-archive")
        (root / prefix / "usr").rename(root / prefix / ".usr")  # keep only the archive
    return root


def test_locale_archive_hashes_equal_the_per_locale_folders(compiled: Path) -> None:
    folders = g.locale_file_hashes(HostMachine(), locale_dir=str(compiled / "folders"))
    added = g.locale_file_hashes(HostMachine(), locale_dir=str(compiled / "added"))
    direct = g.locale_file_hashes(HostMachine(), locale_dir=str(compiled / "direct"))
    assert sorted(folders) == ["de_DE.utf8", "en_US.utf8"]  # keys normalized (.UTF-8 folders)
    assert sorted(added) == ["de_DE.utf8", "en_US.utf8"]
    assert set(folders["de_DE.utf8"]) == set(archive.CATEGORY_INDEX)
    assert added == folders
    assert direct["de_DE.utf8"] == folders["de_DE.utf8"]
    lc_collate = (compiled / "folders/de_DE.UTF-8/LC_COLLATE").read_bytes()
    assert added["de_DE.utf8"]["LC_COLLATE"] == hashlib.sha256(lc_collate).hexdigest()
    names = ["de_DE.UTF-8", "en_US.UTF-8"]
    assert group_representatives(names, added) == group_representatives(names, folders)
    assert folders["de_DE.utf8"]["LC_TIME"] != folders["en_US.utf8"]["LC_TIME"]


def test_locale_archive_records_share_data_and_lie_inside_the_file(compiled: Path) -> None:
    data = (compiled / "added/locale-archive").read_bytes()
    ranges = archive.category_ranges(data)
    assert set(ranges) == {"de_DE.utf8", "en_US.utf8"}
    for per_category in ranges.values():
        for offset, length in per_category.values():
            assert offset > 0 and length > 0 and offset + length <= len(data)
    # both are iso14651_t1 collations of glibc 2.36: the archive stores the table once
    de, en = ranges["de_DE.utf8"], ranges["en_US.utf8"]
    assert (de["LC_COLLATE"] == en["LC_COLLATE"]) == (
        (compiled / "folders/de_DE.UTF-8/LC_COLLATE").read_bytes() ==
        (compiled / "folders/en_US.UTF-8/LC_COLLATE").read_bytes())


def test_malformed_locale_archives_are_guest_errors(compiled: Path) -> None:
    data = (compiled / "added/locale-archive").read_bytes()
    for bad in (b"", b"\0" * 56, b"xxxx" + data[4:], data[:200]):
        with pytest.raises(GuestError, match="locale-archive"):
            archive.category_ranges(bad)


def _strcoll_oracle(strings: list[str], order: list[int], locale_dir: Path,
                    name: str) -> int:
    """Adjacent pairs of ``order`` that strcoll_l (then strcmp) puts the other way round,
    counted with this host's glibc through ctypes: independent of dgsort's C code."""
    import ctypes

    os.environ["LOCPATH"] = str(locale_dir)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.newlocale.restype = ctypes.c_void_p
        libc.newlocale.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
        libc.strcoll_l.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
        libc.freelocale.argtypes = [ctypes.c_void_p]
        lc_collate_mask, lc_ctype_mask = 1 << 3, 1 << 0
        loc = libc.newlocale(lc_collate_mask | lc_ctype_mask, name.encode(), None)
        assert loc, f"newlocale({name}) failed"
        count = 0
        for a, b in itertools.pairwise(order):
            x, y = strings[a].encode(), strings[b].encode()
            c = libc.strcoll_l(x, y, loc) or (x > y) - (x < y)
            count += c > 0
        libc.freelocale(loc)
    finally:
        del os.environ["LOCPATH"]
    return count


def test_strcoll_verification_counts_what_glibc_strcoll_reverses(compiled: Path,
                                                                  tmp_path: Path) -> None:
    """Every adjacent pair is verified (-s 1); the count and the examples agree with glibc's
    strcoll_l called directly. Punctuation that is ignored at the first levels is where
    iso14651_t1's strxfrm and strcoll part ways in glibc 2.36 (2x / 2/X)."""
    binary = build_sorter(tmp_path)
    strings = ["2x", "2/X", ".8C", "8_C", "8p", "8.P", "a", "b", "ö", "Z", "a-b", "ab", "中",
               "\U00020000", "\U00020001", "a\U00020000"]
    order_file = tmp_path / "order"
    out = subprocess.run([str(binary), "-s", "1", "-O", f"en_US.UTF-8:{order_file}", "-",
                          "en_US.UTF-8"], input=b"".join(s.encode() + b"\0" for s in strings),
                         capture_output=True, check=True, timeout=60,
                         env={**os.environ, "LOCPATH": str(compiled / "folders")}).stdout
    [row] = g.parse_results(out.decode())
    order = list(struct.unpack(f"<{len(strings)}I", order_file.read_bytes()))
    assert row.ok and row.pairs_checked == len(strings) - 1
    expected = _strcoll_oracle(strings, order, compiled / "folders", "en_US.UTF-8")
    assert row.disagreements == expected
    assert expected >= 1, "glibc 2.36 (Debian 12) orders 2x / 2/X differently in strcoll"
    assert len(row.disagreement_examples) == min(expected, 8)
    for first, second in row.disagreement_examples:
        assert order.index(second) == order.index(first) + 1  # adjacent, in strxfrm order


def test_strcoll_stride_samples_only_supplementary_and_single_ideograph_pairs(
        compiled: Path, tmp_path: Path) -> None:
    binary = build_sorter(tmp_path)
    strings = ["a", "b", "c", "\U00020000", "\U00020001", "\U00020002", "d"]
    data = b"".join(s.encode() + b"\0" for s in strings)
    env = {**os.environ, "LOCPATH": str(compiled / "folders")}
    checked = {}
    for stride in ("0", "1", "1000"):
        out = subprocess.run([str(binary), "-s", stride, "-", "en_US.UTF-8", "C.UTF-8"],
                             input=data, capture_output=True, check=True, timeout=60,
                             env=env).stdout.decode()
        checked[stride] = [r.pairs_checked for r in g.parse_results(out)]
    assert checked["0"] == [0, 0] and checked["1"] == [6, 6]
    # corpus index 0 ("a") is a multiple of any stride; other pairs touching U+2000x are skipped
    for count in checked["1000"]:
        assert 2 <= count < 6
    ideographs = ["x", "\u4e00", "\u4e01", "\uac00", "\u4e00a", "\u00e9", "\u0e01", "y"]
    out = subprocess.run([str(binary), "-s", "1000", "-", "C.UTF-8"],
                         input=b"".join(s.encode() + b"\0" for s in ideographs),
                         capture_output=True, check=True, timeout=60, env=env).stdout.decode()
    [row] = g.parse_results(out)
    # code point order: x y é ก 一 一a 丁 가: only 丁/가 (two single ideographs, the first not
    # at a corpus index divisible by 1000) is sampled out; every other pair is verified
    assert row.pairs_checked == len(ideographs) - 2


def test_each_locale_is_an_order_observation_and_a_missing_one_a_set() -> None:
    same = LocaleOutcome("en_US.utf8", "unchanged", baseline=_result("en_US.utf8", "f1"),
                         candidate=_result("en_US.utf8", "f1"))
    assert same.delta().status is DeltaStatus.UNCHANGED and same.delta().rule == "ordering"
    moved = LocaleOutcome("th_TH.utf8", "changed", baseline=_result("th_TH.utf8", "f1"),
                          candidate=_result("th_TH.utf8", "f2"))
    delta = moved.delta(action="REINDEX")
    assert (delta.id, delta.status, delta.rule) == ("th_TH.UTF-8", DeltaStatus.REGRESSION,
                                                   "ordering")
    assert delta.title.endswith("Action: REINDEX") and delta.title.startswith("th_TH.UTF-8")
    assert delta.baseline is not None and delta.candidate is not None
    gone = LocaleOutcome("aa_ER@saaho", "missing", baseline=_result("aa_ER@saaho", "f"),
                         candidate=g.SortResult("aa_ER@saaho", "missing", "-", 0, 0, "-", 0.0))
    shipped = (ElementSet.of(["aa_ER@saaho", "C.UTF-8"]), ElementSet.of(["C.UTF-8"]))
    lost = gone.delta(shipped, "keep the locale")
    assert (lost.status, lost.rule) == (DeltaStatus.REGRESSION, "set")
    assert "lacks 1 locales the baseline has: aa_ER@saaho" in lost.detail
    disagree = LocaleOutcome("th_TH.utf8", "unchanged", baseline=_result("th_TH.utf8", "f", 0),
                             candidate=_result("th_TH.utf8", "f", 3))
    strcoll = disagree.strcoll_delta(corpus_from_strings(["2/X", "2x"]))
    assert strcoll is not None and strcoll.id == "strcoll:th_TH.UTF-8"
    assert strcoll.status is DeltaStatus.REGRESSION and strcoll.rule == "exact"
    assert same.strcoll_delta(corpus_from_strings(["a"])) is None
