"""Fault scripting: which request each rule takes, and how often."""

from __future__ import annotations

import pytest

from distrogate.dnf.faults import (
    FAULT_CLASSES,
    MIRRORS,
    TARGETS,
    UNRESOLVABLE_HOST,
    FaultParameters,
    Rule,
    Script,
    cells,
    check_id,
    corrupt,
    scenario,
)


def test_the_first_n_matching_requests_are_hit_then_served() -> None:
    script = scenario("http_503", "repomd", FaultParameters(transient_requests=2))
    path = "repodata/repomd.xml"
    hits = [script.decide(m, path) for m in ("m1", "m2", "m3", "m1")]
    assert [h.status if h else None for h in hits] == [503, 503, None, None]


def test_a_rule_ignores_paths_of_other_targets() -> None:
    script = scenario("http_500", "packages")
    assert script.decide("m1", "repodata/repomd.xml") is None
    assert script.decide("m1", "repodata/primary.xml.gz") is None
    hit = script.decide("m2", "packages/dg-base-1.0-1.noarch.rpm")
    assert hit is not None and hit.status == 500


def test_metadata_target_is_the_primary_metadata_not_repomd() -> None:
    script = scenario("reset_mid_body", "metadata")
    assert script.decide("m1", "repodata/repomd.xml") is None
    rule = script.decide("m1", "repodata/primary.xml.gz")
    assert rule is not None and rule.action == "reset"


def test_404_on_one_mirror_hits_every_request_there_and_none_elsewhere() -> None:
    script = scenario("http_404_one_mirror", "repomd")
    for _ in range(10):
        hit = script.decide("m1", "repodata/repomd.xml")
        assert hit is not None and hit.status == 404
    assert script.decide("m2", "repodata/repomd.xml") is None


def test_slow_rate_is_on_the_first_mirror_below_minrate() -> None:
    rule = scenario("slow_rate", "packages", FaultParameters(slow_rate=300)).rules[0]
    assert (rule.action, rule.mirrors, rule.rate, rule.count) == ("slow", ("m1",), 300, 0)


def test_unresolvable_mirror_puts_a_host_that_does_not_resolve_first() -> None:
    script = scenario("unresolvable_mirror", "mirrorlist")
    assert script.hosts == (UNRESOLVABLE_HOST, *MIRRORS)
    assert script.rules == ()
    assert UNRESOLVABLE_HOST.endswith(".invalid")  # RFC 2606: never resolves


def test_cells_give_every_target_to_path_classes_and_one_to_the_mirrorlist_class() -> None:
    found = cells(["stall", "unresolvable_mirror"], list(TARGETS))
    assert [check_id(c, t) for c, t in found] == [
        "stall@repomd", "stall@metadata", "stall@packages", "unresolvable_mirror@mirrorlist"]


def test_every_class_has_a_scenario_on_every_target() -> None:
    for fault_class, target in cells(list(FAULT_CLASSES), list(TARGETS)):
        script = scenario(fault_class, target)
        assert script.label == check_id(fault_class, target)
    with pytest.raises(KeyError):
        scenario("dns_poison", "repomd")


def test_a_script_round_trips_through_json_and_counts_from_zero() -> None:
    script = scenario("stall", "metadata", FaultParameters(stall_requests=1, stall_seconds=2))
    assert script.decide("m1", "repodata/primary.xml.gz") is not None
    again = Script.from_json(script.to_json())
    assert again.rules == script.rules and again.hosts == script.hosts
    assert again.decide("m1", "repodata/primary.xml.gz") is not None  # fresh counts
    with pytest.raises(ValueError, match="unknown fault action"):
        Rule.from_json({"action": "explode", "pattern": "*"})


def test_corrupt_keeps_the_length_and_changes_the_bytes() -> None:
    body = bytes(range(256)) * 4
    bad = corrupt(body)
    assert len(bad) == len(body) and bad != body
    assert corrupt(b"") == b""
