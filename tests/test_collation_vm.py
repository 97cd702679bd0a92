"""The collation comparison on real VMs, against a planted fault.

``tests/images/collation-fault.yaml`` is the promoted image with exactly one locale's collation
changed on purpose (de_DE.UTF-8: ö and Ö sort after z). The comparison must name that locale and
those characters, and find nothing in the other locales, including de_AT.UTF-8 and de_CH.UTF-8
whose files were shared with de_DE.UTF-8 before the edit. The same locales moved into
locale-archive (``localedef --add-to-archive`` in a VM) must hash, group and sort exactly as
the per-locale folders did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from distrogate.collation import guest as g
from distrogate.collation.compare import ACTION, compare_images, group_representatives
from distrogate.collation.corpus import build_corpus
from distrogate.differential import DeltaStatus
from distrogate.errors import InputError
from distrogate.guest.machine import Machine
from distrogate.images.artifact import ImageArtifact
from distrogate.images.build import build_image
from distrogate.images.spec import load_spec
from tests.conftest import Cli

FAULT_SPEC = Path(__file__).resolve().parent / "images" / "collation-fault.yaml"
LOCALES = ["de_DE.UTF-8", "de_AT.UTF-8", "de_CH.UTF-8", "de_DE", "en_US.UTF-8", "sv_SE.UTF-8",
           "C.UTF-8"]

pytestmark = [pytest.mark.vm, pytest.mark.slow]


@pytest.fixture(scope="module")
def fault_image() -> ImageArtifact:
    """The promoted image with de_DE.UTF-8's collation edited (built once, then cached)."""
    return build_image(load_spec(FAULT_SPEC))


def test_planted_collation_fault_is_found_and_named(
        boot: Callable[..., Machine], baseline_image: ImageArtifact,
        fault_image: ImageArtifact) -> None:
    base = boot(baseline_image, role="collbase")
    fault = boot(fault_image, role="collfault")
    result = compare_images(base, fault, build_corpus("quick"), LOCALES)

    assert [o.locale for o in result.by_status("changed")] == ["de_DE.utf8"]
    unchanged = {o.locale for o in result.by_status("unchanged")}
    assert unchanged == {"de_AT.utf8", "de_CH.utf8", "de_DE", "en_US.utf8", "sv_SE.utf8",
                         "C.utf8"}
    outcome = result.outcomes["de_DE.utf8"]
    assert outcome.diff is not None
    assert set(outcome.diff.code_points) == {0xD6, 0xF6}
    assert outcome.diff.blocks == {"Latin-1 Supplement": 2}
    assert not outcome.diff.ascii_affected
    assert outcome.files_changed == ["LC_COLLATE"]
    examples = " ".join(f.describe() for f in outcome.diff.examples)
    assert "U+00F6" in examples and "now sorts before" in examples
    summary = outcome.summary()
    assert summary["action"] == ACTION and summary["strings_moved"] >= 4
    assert outcome.headline().startswith("de_DE.UTF-8: ")
    # strcoll_l verified the adjacent pairs on both images; the planted change is in the data
    # both functions read, so it does not make them disagree more on the fault image.
    for name in ("de_DE.utf8", "en_US.utf8", "C.utf8"):
        o = result.outcomes[name]
        assert o.baseline is not None and o.candidate is not None
        # every pair but the sampled kinds (supplementary planes, lone ideographs: 1 in 256)
        assert o.baseline.pairs_checked > len(result.corpus) // 4, o.summary()
        assert o.candidate.pairs_checked > len(result.corpus) // 4, o.summary()
    assert result.outcomes["C.utf8"].strcoll_status() is None  # code point order: no dispute
    en = result.outcomes["en_US.utf8"]
    assert en.strcoll_status() in (None, DeltaStatus.ALSO_FAILS_ON_BASELINE)  # same glibc
    # Sorting every locale on its own agrees with the grouped (deduplicated) sort.
    path = g.install(fault, result.corpus)
    alone = g.run_sorter(fault, path, ["de_AT.utf8", "de_DE.utf8"], jobs=1)
    assert alone["de_AT.utf8"].fingerprint == result.candidate.results["de_AT.utf8"].fingerprint
    assert alone["de_DE.utf8"].fingerprint == result.candidate.results["de_DE.utf8"].fingerprint


def test_locale_archive_layout_hashes_and_sorts_like_folders(
        boot: Callable[..., Machine], baseline_image: ImageArtifact) -> None:
    """The same compiled locales moved into locale-archive (as locale-gen or Fedora's
    glibc-all-langpacks keep them) hash, group and sort exactly as the per-locale folders."""
    machine = boot(baseline_image, role="collarchive")
    names = ["de_DE.utf8", "de_AT.utf8", "en_US.utf8", "th_TH.utf8"]
    corpus = build_corpus("quick")
    folders = g.locale_file_hashes(machine)
    path = g.install(machine, corpus)
    before = g.run_sorter(machine, path, names, jobs=2)
    machine.succeed(["localedef", "--add-to-archive", "--replace",
                     *[f"{g.LOCALE_DIR}/{n}" for n in names]], timeout=300)
    # glibc prefers the archive: hide the folders so that only the archive can serve them
    machine.succeed(["sh", "-c", "cd /usr/lib/locale && for d in " + " ".join(names) +
                     "; do mv $d .hidden-$d; done"], timeout=60)
    archived = g.locale_file_hashes(machine)
    for name in names:
        assert archived[name] == folders[name], name
    assert g.list_locales(machine).count("de_DE.utf8") == 1  # served by the archive
    after = g.run_sorter(machine, path, names, jobs=2)
    for name in names:
        assert after[name].ok and after[name].fingerprint == before[name].fingerprint, name
    assert group_representatives(names, archived) == group_representatives(names, folders)


def test_unknown_locale_is_an_input_error(boot: Callable[..., Machine],
                                          baseline_image: ImageArtifact) -> None:
    base = boot(baseline_image, role="collnames")
    with pytest.raises(InputError, match="xx_YY"):
        compare_images(base, base, build_corpus("quick"), ["en_US.UTF-8", "xx_YY.UTF-8"])


def test_gate_rejects_the_planted_fault_naming_locale_and_characters(cli: Cli,
                                                                     tmp_path: Path) -> None:
    """The suite itself, through the gate: the changed blocking locale fails, the rest pass."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: blocking\nsuites:\n  collation:\n"
                      "    locales: [de_DE.UTF-8, de_AT.UTF-8, en_US.UTF-8, C.UTF-8]\n"
                      "    blocking_locales: [de_DE.UTF-8, en_US.UTF-8]\n    corpus: quick\n")
    reports = tmp_path / "reports"
    result = cli("gate", "--candidate", str(FAULT_SPEC), "--baseline", "promoted",
                 "--suite", "collation", "--policy", str(policy), "--reports-dir", str(reports),
                 timeout=1800)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = (reports / "latest").resolve()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["decision"] == "reject"
    outcomes = {t["nodeid"].split("::", 1)[1]: t["outcome"] for t in verdict["tests"]}
    assert outcomes["test_locale_order[blocking]"] == "failed"
    assert outcomes["test_locale_order[advisory]"] == "passed"  # de_AT shared files: unchanged
    [reason] = verdict["reasons"]
    assert "test_locale_order[blocking]" in reason and "de_DE.UTF-8" in reason, reason
    [blocking] = [t for t in verdict["tests"] if t["nodeid"].endswith("[blocking]")]
    assert "de_DE.UTF-8" in blocking["message"] and "U+00F6" in blocking["message"]
    assert "en_US" not in blocking["message"], "an unchanged locale was reported"
    assert "de_DE.UTF-8" in (run_dir / "summary.html").read_text()
    results = json.loads((run_dir / "results.json").read_text())
    [record] = [t for t in results["records"] if t["nodeid"].endswith("[blocking]")]
    regressions = {d["id"] for d in record["deltas"] if d["status"] == "regression"}
    assert regressions == {"de_DE.UTF-8"}, record["deltas"]
    [item] = [d for d in record["deltas"] if d["id"] == "de_DE.UTF-8"]
    assert "REINDEX" in item["title"] and item["rule"] == "ordering"
    assert item["baseline"]["kind"] == item["candidate"]["kind"] == "order"
    assert item["baseline"]["digest"] != item["candidate"]["digest"]
