"""Collation: every checked locale must sort text on the candidate exactly as on the baseline.

A changed sort order silently corrupts every index on text built under the old order (lookups
miss rows, unique constraints admit duplicates). The corpus (every assigned code point in short
contexts, see ``distrogate.collation.corpus``) is sorted with each image's own glibc and locale
data; fingerprints of the orders are compared, and where they differ the orders are diffed.
Adjacent pairs of each order are verified with strcoll_l (PostgreSQL's comparison): a
disagreement with the strxfrm order is a finding of its own.

Settings: the policy's ``suites: {collation: {...}}`` (see ``distrogate.collation.settings``);
``--corpus quick|full`` picks the corpus size (the full size: ``pytest suites/test_collation.py
--corpus full``). Tests: one per locale group (blocking, advisory) and a property test with
random strings (hypothesis) for the blocking locales. Every locale is blocking by default
(``blocking_locales: all``); a group the policy leaves empty is not collected at all (an
advisory test is collected only when ``blocking_locales`` is a list).

Each checked locale is a delta of its own (``th_TH.UTF-8``: the order fingerprints of both images
under the ordering rule, or for a locale the candidate lacks, the checked locales each image
ships under the set rule), and so is each locale where strcoll_l disagrees with strxfrm
(``strcoll:th_TH.UTF-8``, an exact rule on each image's disagreeing pairs), so that a waiver can
name one locale: ``{pattern: "suites/test_collation.py::test_locale_order[blocking]",
items: [th_TH.UTF-8], ...}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from distrogate.collation import guest as g
from distrogate.collation.compare import (
    ACTION,
    MISSING_ACTION,
    STRCOLL_ACTION,
    Comparison,
    LocaleOutcome,
    compare_images,
)
from distrogate.collation.corpus import Corpus, build_corpus
from distrogate.collation.diff import show
from distrogate.collation.settings import CollationSettings
from distrogate.collation.strategies import string_lists
from distrogate.differential import DeltaStatus, ElementSet, Order, Ordering
from distrogate.errors import GuestError, ImageFault, InputError
from distrogate.guest.machine import Machine
from fixtures.suites import suite_settings

pytestmark = [pytest.mark.vm]

GROUPS = ("blocking", "advisory")
SHRINK_BUDGET = 90.0  # seconds of guest round trips spent shrinking a failing example


@pytest.fixture(scope="module")
def collation_settings(suite_config: CollationSettings) -> CollationSettings:
    """The validated ``suites.collation`` policy section (``--corpus`` overrides its size)."""
    return suite_config


@pytest.fixture(scope="module")
def collation_corpus(collation_settings: CollationSettings) -> Corpus:
    """The corpus of the configured size."""
    return build_corpus(collation_settings.corpus)


@pytest.fixture(scope="module")
def comparison(baseline: Machine, candidate: Machine, collation_settings: CollationSettings,
               collation_corpus: Corpus) -> Comparison:
    """Both images sorted and compared, once per module."""
    requested = list(collation_settings.locales) if collation_settings.locales else None
    return compare_images(baseline, candidate, collation_corpus, requested,
                          dedupe=collation_settings.dedupe, jobs=collation_settings.jobs,
                          strcoll_stride=collation_settings.strcoll_stride)


def _group(comparison: Comparison, cfg: CollationSettings, group: str) -> list[str]:
    blocking = [n for n in comparison.locales if cfg.is_blocking(n)]
    if group == "blocking":
        return blocking
    return [n for n in comparison.locales if n not in set(blocking)]


def _write_artifact(record: Any, name: str, data: Any) -> Path:
    path = Path(record.run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def _finding(record: Any, outcome: LocaleOutcome, group: str,
             shipped: tuple[ElementSet, ElementSet]) -> None:
    data = outcome.summary()
    data["group"] = group
    if outcome.status == "changed" and outcome.diff is not None:
        d = outcome.diff
        examples = "; ".join(f.describe() for f in d.examples[:3])
        detail = (f"{len(d.moved)} of {d.compared} strings and {len(d.code_points)} code points "
                  f"moved; blocks: {', '.join(f'{b} ({n})' for b, n in list(d.blocks.items())[:6])}"
                  f"; plain ASCII {'is AFFECTED' if d.ascii_affected else 'is not affected'}; "
                  f"e.g. {examples}; locale files changed: "
                  f"{', '.join(outcome.files_changed) or 'none (the glibc code changed)'}. "
                  f"Action: {ACTION}.")
        record.finding(f"collation of {outcome.name} changed", detail, data)
        record.add_delta(outcome.delta(shipped, ACTION))
    else:
        action = f". Action: {data['action']}." if "action" in data else ""
        record.finding(f"collation of {outcome.name}: {outcome.status}",
                       outcome.detail + action, data)
        record.add_delta(outcome.delta(shipped, MISSING_ACTION))


def _strcoll(record: Any, comparison: Comparison, names: list[str]) -> list[LocaleOutcome]:
    """Record strxfrm/strcoll disagreements (items ``strcoll:<locale>``); return regressions."""
    found = comparison.strcoll_findings(names)
    regressions = []
    for outcome in found:
        delta = outcome.strcoll_delta(comparison.corpus)
        if delta is None:  # strcoll_findings keeps none of these
            continue
        record.add_delta(delta)
        if delta.status is DeltaStatus.REGRESSION:
            regressions.append(outcome)
    if found:
        record.finding(f"strcoll_l disagrees with strxfrm in {len(found)} locales",
                       "; ".join(f"{o.strcoll_headline(comparison.corpus)} "
                                 f"[{o.strcoll_status()}]" for o in found[:10]) +
                       f". Note: {STRCOLL_ACTION}.",
                       {o.name: str(o.strcoll_status()) for o in found})
    return regressions


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One ``test_locale_order`` per locale group the policy can fill: with every locale
    blocking there is no advisory group (a test with nothing to check would only be skipped,
    and a skipped blocking test makes the verdict inconclusive)."""
    if "group" not in metafunc.fixturenames:
        return
    try:
        cfg = suite_settings(metafunc.config, "collation")
    except InputError:
        groups: tuple[str, ...] = GROUPS  # the fixtures report the bad policy
    else:
        assert isinstance(cfg, CollationSettings)
        groups = ("blocking",) if cfg.blocking is None else GROUPS
    metafunc.parametrize("group", groups)


def test_locale_order(group: str, comparison: Comparison, collation_settings: CollationSettings,
                      record: Any) -> None:
    """Every locale of the group sorts the corpus identically on both images and still exists."""
    names = _group(comparison, collation_settings, group)
    if not names:
        pytest.skip("every checked locale is blocking (policy suites.collation."
                    "blocking_locales): no advisory locale" if group == "advisory" else
                    "no blocking locale (policy suites.collation.blocking_locales)")
    errors = comparison.by_status("error", names)
    if errors:
        raise GuestError("collation sorter failed for " +
                         "; ".join(o.headline() for o in errors[:5]))
    changed = comparison.by_status("changed", names)
    missing = comparison.by_status("missing", names)
    unchanged = comparison.by_status("unchanged", names)
    shipped = (comparison.shipped("baseline", names), comparison.shipped("candidate", names))
    for outcome in missing + changed:
        _finding(record, outcome, group, shipped)
    for outcome in unchanged:
        record.add_delta(outcome.delta())
    strcoll = _strcoll(record, comparison, names)
    files = {n: c for n, c in comparison.files_changed().items() if n in set(names)}
    if files:
        record.finding(f"locale data files changed in {len(files)} {group} locales",
                       "; ".join(f"{n}: {', '.join(c)}" for n, c in list(files.items())[:20]),
                       {"locales": files})
    record.measure(f"{group}_locales_checked", len(names), "locales")
    record.measure(f"{group}_locales_changed", len(changed), "locales")
    record.measure(f"{group}_locales_missing", len(missing), "locales")
    record.measure("corpus_strings", len(comparison.corpus), "strings",
                   comparison.corpus.corpus_id)
    record.measure(f"{group}_locales_strcoll_regressions", len(strcoll), "locales")
    record.measure("baseline_sort_seconds", comparison.baseline.sort_seconds, "s")
    record.measure("candidate_sort_seconds", comparison.candidate.sort_seconds, "s")
    summary = {"group": group, "corpus": comparison.corpus.summary(),
               "checked_unchanged": [o.locale for o in unchanged],
               "changed": {o.locale: o.summary() for o in changed},
               "missing": [o.locale for o in missing],
               "strcoll": {o.locale: o.summary() for o in comparison.strcoll_findings(names)}}
    record.artifact(f"collation-{group}", _write_artifact(
        record, f"collation/{group}.json", summary), "json")
    lines = [o.headline() for o in missing + changed]
    lines += [o.strcoll_headline(comparison.corpus) for o in strcoll]
    if lines:  # the message says it all; no introspection of the list below it
        raise ImageFault(
            f"{len(changed)} {group} locale(s) sort differently, {len(missing)} are missing and "
            f"{len(strcoll)} newly disagree between strcoll and strxfrm ({len(unchanged)} of "
            f"{len(names)} unchanged):\n  " + "\n  ".join(lines[:40]) +
            (f"\n  ... and {len(lines) - 40} more" if len(lines) > 40 else "") +
            (f"\nAction (changed): {ACTION}" if changed else "") +
            (f"\nNote (strcoll): {STRCOLL_ACTION}" if strcoll else ""))


def _distinct(comparison: Comparison, names: list[str]) -> list[str]:
    """One locale per pair of (baseline, candidate) collation groups among ``names``: locales
    whose data are identical on each image sort alike, so one of them stands for the rest."""
    seen: dict[tuple[str, str], str] = {}
    for name in names:
        key = (comparison.baseline.representative.get(name, name),
               comparison.candidate.representative.get(name, name))
        seen.setdefault(key, name)
    return list(seen.values())


def test_random_strings_sort_alike(baseline: Machine, candidate: Machine,
                                   comparison: Comparison,
                                   collation_settings: CollationSettings, record: Any) -> None:
    """Random lists of strings (hypothesis) sort alike on both images in every blocking locale
    whose corpus order did not change (a changed one is reported by test_locale_order), one
    locale per distinct collation.

    A failing list is shrunk (within a time budget) to a minimal example and reported.
    """
    locales = _distinct(comparison, [n for n in _group(comparison, collation_settings, "blocking")
                                     if comparison.outcomes[n].status == "unchanged"])
    if not locales or collation_settings.hypothesis_examples == 0:
        pytest.skip("no unchanged blocking locales, or hypothesis_examples is 0")
    base_names = {n: comparison.baseline.names.get(n, n) for n in locales}
    cand_names = {n: comparison.candidate.names.get(n, n) for n in locales}

    def orders(strings: list[str], names: list[str]) -> tuple[dict[str, list[int]],
                                                               dict[str, list[int]]]:
        """Each image's order of ``strings`` per locale, keyed by the baseline's name."""
        base = g.sort_strings(baseline, strings, [base_names[n] for n in names])
        cand = g.sort_strings(candidate, strings, [cand_names[n] for n in names])
        return ({n: base[base_names[n]] for n in names}, {n: cand[cand_names[n]] for n in names})

    seen: dict[tuple[str, ...], list[str]] = {}
    first_failure: list[float] = []

    def differing(strings: list[str]) -> list[str]:
        key = tuple(strings)
        if key in seen:
            return seen[key]
        if first_failure and time.monotonic() - first_failure[0] > SHRINK_BUDGET:
            assume(False)  # out of shrinking budget: keep the smallest failure found so far
        base, cand = orders(strings, locales)
        out = [loc for loc in locales if base[loc] != cand[loc]]
        if out and not first_failure:
            first_failure.append(time.monotonic())
        seen[key] = out
        return out

    @settings(max_examples=collation_settings.hypothesis_examples, deadline=None,
              derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        strings = data.draw(string_lists(), label="strings")
        bad = differing(strings)
        if bad:
            base_orders, cand_orders = orders(strings, bad[:1])
            base, cand = base_orders[bad[0]], cand_orders[bad[0]]
            raise ImageFault(
                f"{', '.join(g.policy_name(n) for n in bad)}: {len(strings)} strings sort "
                f"differently; baseline order: {', '.join(show(strings[i]) for i in base)}; "
                f"candidate order: {', '.join(show(strings[i]) for i in cand)}")

    try:
        prop()
    except AssertionError as exc:
        record.finding("random strings sort differently (hypothesis, shrunk)", str(exc)[:2000],
                       {"locales": locales})
        shortest: dict[str, tuple[str, ...]] = {}  # per locale, its smallest failing list
        for strings, names in seen.items():
            for name in names:
                if name not in shortest or len(strings) < len(shortest[name]):
                    shortest[name] = strings
        for name, strings in shortest.items():
            base_orders, cand_orders = orders(list(strings), [name])
            item = g.policy_name(name)
            record.observe(item, "baseline", Order.of([strings[i] for i in base_orders[name]]))
            record.observe(item, "candidate", Order.of([strings[i] for i in cand_orders[name]]))
            record.compare(item, Ordering(noun="strings"),
                           title=f"{item}: random strings sort differently")
        raise
    record.measure("hypothesis_lists_sorted", len(seen), "lists")
