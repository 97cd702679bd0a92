"""dnf's outcome classified from its real output (dnf 4.14 on this host, run against the
suite's own mirror on loopback; tests/unit/data/dnf/dnf-4.14-outputs.json), and the wrapper's
retry decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distrogate.dnf.wrapper import EX_TEMPFAIL, classify, main, transient

DATA = json.loads((Path(__file__).parent / "data" / "dnf" / "dnf-4.14-outputs.json")
                  .read_text())["runs"]

EXPECTED = {
    "ok_install": "ok",
    "http_503_repomd_makecache": "http_5xx",
    "not_found_everywhere_repomd": "not_found",
    "not_found_everywhere_packages": "not_found",
    "reset_metadata": "reset",
    "truncated_packages": "truncated",
    "corrupt_packages": "checksum",
    "corrupt_repomd": "metadata_corrupt",
    "stall_timeout_repomd": "timeout",
    "resolve_only": "resolve",
    "gpg_no_key": "gpg",
    "depsolve": "depsolve",
    "no_match": "no_match",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_dnf_output_is_classified(name: str) -> None:
    run = DATA[name]
    assert classify(run["exit"], run["output"]) == EXPECTED[name]


def test_transient_and_final_classes() -> None:
    for name in ("http_5xx", "reset", "truncated", "checksum", "metadata_corrupt", "timeout",
                 "resolve", "download"):
        assert transient(name)
    for name in ("gpg", "depsolve", "not_found", "no_match", "transaction", "other"):
        assert not transient(name)


def test_exit_zero_with_a_skipped_repository_is_not_success() -> None:
    # Debian's dnf.conf has skip_if_unavailable=True: makecache exits 0 and says so
    text = ("Errors during downloading metadata for repository 'dg':\n  - Status code: 503 "
            "for http://m1.mirror.lab:1/m1/repodata/repomd.xml (IP: 10.0.0.1)\nError: Failed "
            "to download metadata for repo 'dg': Cannot download repomd.xml\n"
            "Ignoring repositories: dg\nMetadata cache created.\n")
    assert classify(0, text) == "http_5xx"


def test_the_wrapper_fails_fast_on_a_final_class(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "dnf"
    fake.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'No match for argument: nope'\n"
                    "echo 'Error: Unable to find a match: nope'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert main(["--budget", "20", "-y", "install", "nope"]) == 1
    assert calls.read_text().count("x") == 1


def test_the_wrapper_retries_a_transient_class_until_it_passes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "dnf"
    fake.write_text(f"#!/bin/sh\necho x >> {calls}\n"
                    f"[ $(wc -l < {calls}) -ge 3 ] && {{ echo Complete!; exit 0; }}\n"
                    "echo 'Curl error (56): Failure when receiving data from the peer'\n"
                    "echo \"Error: Failed to download metadata for repo 'dg'\"\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert main(["--budget", "30", "--backoff", "0.1", "-y", "makecache"]) == 0
    assert calls.read_text().count("x") == 3


def test_the_wrapper_gives_up_when_the_budget_is_spent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "dnf"
    fake.write_text("#!/bin/sh\necho 'Curl error (28): Timeout was reached'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert main(["--budget", "1.5", "--backoff", "0.5", "makecache"]) == EX_TEMPFAIL


def test_through_the_wrapper_its_exit_status_is_the_outcome() -> None:
    from distrogate.dnf.guest import outcome_class

    earlier = DATA["http_503_repomd_makecache"]["output"]
    passed = (earlier + "dg-dnf-retry: attempt 1: exit 1, class http_5xx, retrying in 1s\n"
              "Metadata cache created.\ndg-dnf-retry: attempt 2: exit 0, class ok, done\n")
    assert outcome_class(0, passed, wrapped=True) == "ok"
    assert outcome_class(0, passed, wrapped=False) == "http_5xx"
    gave_up = earlier + "dg-dnf-retry: attempt 5: exit 1, class http_5xx, budget spent\n"
    assert outcome_class(75, gave_up, wrapped=True) == "http_5xx"
    assert outcome_class(3, "fleet wrapper: no\n", wrapped=True) == "other"


DATA_423 = json.loads((Path(__file__).parent / "data" / "dnf" / "dnf-4.23-outputs.json")
                      .read_text())["runs"]
EXPECTED_423 = {  # cell (raw) -> the class dnf 4.23's own output gives
    "http_503@repomd": "http_5xx", "http_500@metadata": "http_5xx",
    "http_503@packages": "ok", "http_404_one_mirror@repomd": "ok",
    "reset_mid_body@repomd": "reset", "reset_mid_body@metadata": "reset",
    "truncated_body@repomd": "truncated", "truncated_body@metadata": "truncated",
    "corrupt_body@repomd": "metadata_corrupt", "corrupt_body@metadata": "checksum",
    "stall@repomd": "ok", "slow_rate@packages": "ok", "unresolvable_mirror@mirrorlist": "ok",
}


@pytest.mark.parametrize("cell", sorted(EXPECTED_423))
def test_real_dnf_4_23_output_is_classified(cell: str) -> None:
    run = DATA_423[f"{cell}:raw"]
    assert classify(run["exit"], run["output"]) == EXPECTED_423[cell]
