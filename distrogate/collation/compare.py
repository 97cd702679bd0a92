"""The collation comparison of two images: survey each, compare fingerprints, diff what differs.

A *survey* of one image lists its locales, hashes their data (per-locale folders or
locale-archive, hashed alike), and sorts the corpus under each selected locale with the image's
own glibc. Locales whose LC_COLLATE and LC_CTYPE data are byte-identical in that image sort
identically (the order is a function of the libc and those data), so by default one
representative per such group is sorted and its result stands for the group (``dedupe=False``
sorts every locale). Orders of the representatives stay in the guest and are fetched only where
the fingerprints of the two images differ.

Locale names are matched between the images, and with policy names, after glibc's normalization
of the codeset (``C.UTF-8`` and ``C.utf8`` are one locale). Next to the strxfrm order, the sorter
verifies adjacent pairs with strcoll_l (PostgreSQL's comparison); pairs the two functions order
differently are reported per locale (:meth:`LocaleOutcome.strcoll_status`).

In the differential model each locale is an *order* observation per image (the sorter's
fingerprint of the corpus order, with the number of strings the locale can encode) compared by
the :class:`~distrogate.differential.Ordering` rule; a locale the candidate does not ship is a
*set* observation (the locales each image ships) under :class:`~distrogate.differential.SetRule`;
strcoll/strxfrm agreement is an exact rule on each image's count of disagreeing pairs
(:meth:`LocaleOutcome.delta`, :meth:`LocaleOutcome.strcoll_delta`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from distrogate.collation import guest as g
from distrogate.collation.corpus import Corpus
from distrogate.collation.diff import OrderDiff, diff_orders, show
from distrogate.differential import (
    Delta,
    DeltaStatus,
    ElementSet,
    Exact,
    Observation,
    Order,
    Ordering,
    SetRule,
    Value,
    compare,
    judge,
)
from distrogate.errors import GuestError

log = logging.getLogger(__name__)

ACTION = ("indexes on text in this locale must be rebuilt (REINDEX) before the new image serves "
          "data; until then lookups may miss rows and unique constraints may admit duplicates")
MISSING_ACTION = ("databases created in this locale cannot be served by the new image: keep the "
                  "locale (install it) or migrate those databases first")
STRCOLL_ACTION = ("PostgreSQL orders text with strcoll, while whatever sorts by strxfrm keys "
                  "(sort(1), PostgreSQL's abbreviated keys) orders these pairs the other way: "
                  "data sorted by one and searched with the other can miss rows; keep "
                  "abbreviated keys off for libc collations (PostgreSQL's default) and report "
                  "the pairs to glibc")
ORDERS_DIR = f"{g.WORKDIR}/orders"
#: strcoll_l verifies every adjacent pair of each order, except that of the pairs with a
#: supplementary-plane character (glibc's strcoll takes ~20 us for one in iso14651_t1 locales,
#: ~30x the rest) and of the pairs of two single ideographs or syllables (U+3400 on: the big
#: uniform ranges, each string one character) only those whose first string's corpus index is
#: a multiple of this are. 1: every pair; 0: none (``dgsort -s``).
STRCOLL_STRIDE = 256


@dataclass
class Survey:
    """One image's collation facts."""

    machine: str
    available: list[str]
    hashes: dict[str, dict[str, str]]
    results: dict[str, g.SortResult]
    representative: dict[str, str]  # locale -> this machine's locale whose sort stands for it
    seconds: float
    sort_seconds: float
    #: requested name (the baseline's spelling) -> this machine's own spelling of that locale
    names: dict[str, str] = field(default_factory=dict)


@dataclass
class LocaleOutcome:
    """The verdict on one locale."""

    locale: str
    status: str  # unchanged | changed | missing | error
    detail: str = ""
    diff: OrderDiff | None = None
    files_changed: list[str] = field(default_factory=list)
    baseline: g.SortResult | None = None
    candidate: g.SortResult | None = None

    def summary(self) -> dict[str, Any]:
        """Plain data for findings and artifacts."""
        out: dict[str, Any] = {"locale": self.locale, "status": self.status,
                               "locale_files_changed": self.files_changed}
        if self.detail:
            out["detail"] = self.detail
        if self.diff is not None:
            out.update(self.diff.summary())
        if self.baseline is not None:
            out["fingerprint_baseline"] = self.baseline.fingerprint
            out["codeset"] = self.baseline.codeset
        if self.candidate is not None:
            out["fingerprint_candidate"] = self.candidate.fingerprint
        for side, result in (("baseline", self.baseline), ("candidate", self.candidate)):
            if result is not None and result.ok:
                out[f"strcoll_disagreements_{side}"] = result.disagreements
                out[f"strcoll_pairs_checked_{side}"] = result.pairs_checked
        if self.status == "changed":
            out["action"] = ACTION
        elif self.status == "missing":
            out["action"] = MISSING_ACTION
        return out

    @property
    def name(self) -> str:
        """The locale's name as policies and waivers spell it (``th_TH.UTF-8``)."""
        return g.policy_name(self.locale)

    def order(self, side: str) -> Order | None:
        """The order observation of this locale on ``side`` (``baseline``, ``candidate``):
        the sorter's fingerprint and the number of strings sorted; None where the locale is
        missing or did not sort."""
        result = self.baseline if side == "baseline" else self.candidate
        if result is None or not result.ok:
            return None
        return Order(f"sorter:{result.fingerprint}", result.included)

    def delta(self, shipped: tuple[ElementSet, ElementSet] | None = None,
              action: str = "") -> Delta:
        """This locale's delta: its order on both images (:class:`Ordering`), or for a locale
        the candidate does not ship, the checked locales each image ships (``shipped``:
        baseline's and candidate's, from :meth:`Comparison.shipped`) under :class:`SetRule`.
        The title is the headline with ``action``."""
        title = f"{self.headline()}. Action: {action}" if action else self.headline()
        if self.status == "missing":
            base, cand = shipped or (ElementSet.of([self.name]), ElementSet.of(()))
            return compare(self.name, SetRule(noun="locales"), base, cand, title=title)
        delta = compare(self.name, Ordering(noun="strings"), self.order("baseline"),
                        self.order("candidate"), title=title)
        if self.diff is not None and delta.status is DeltaStatus.REGRESSION:
            d = self.diff
            detail = (f"{len(d.moved)} of {d.compared} strings moved"
                      + (f"; e.g. {d.examples[0].describe()}" if d.examples else ""))
            delta = Delta(delta.id, delta.status, delta.title, delta.rule,
                          f"{delta.detail}; {detail}", delta.baseline, delta.candidate)
        return delta

    def strcoll_observation(self, side: str) -> Observation | None:
        """How many adjacent pairs strcoll_l orders against strxfrm on ``side``."""
        result = self.baseline if side == "baseline" else self.candidate
        if result is None or not result.ok:
            return None
        return Value({"disagreements": result.disagreements,
                      "pairs_checked": result.pairs_checked})

    def strcoll_delta(self, corpus: Corpus) -> Delta | None:
        """The delta on strxfrm/strcoll agreement (``strcoll:<locale>``), None when neither
        image has a disagreement (or a side did not sort)."""
        if self.strcoll_status() is None:
            return None
        return compare(f"strcoll:{self.name}", Exact(predicate=_agrees, wanted="no adjacent "
                                                     "pair ordered differently by strcoll_l"),
                       self.strcoll_observation("baseline"),
                       self.strcoll_observation("candidate"),
                       title=self.strcoll_headline(corpus))

    def strcoll_status(self) -> DeltaStatus | None:
        """How the candidate compares with the baseline on strxfrm/strcoll agreement: None when
        neither image has a disagreement (or a side did not sort), else REGRESSION, FIXED or
        ALSO_FAILS_ON_BASELINE."""
        b, c = self.baseline, self.candidate
        if b is None or c is None or not b.ok or not c.ok:
            return None
        if not b.disagreements and not c.disagreements:
            return None
        return judge(candidate_ok=not c.disagreements, baseline_ok=not b.disagreements)

    def headline(self) -> str:
        """One line: what happened to this locale."""
        if self.status == "changed" and self.diff is not None:
            d = self.diff
            blocks = ", ".join(list(d.blocks)[:4]) + (" ..." if len(d.blocks) > 4 else "")
            points = " ".join(f"U+{cp:04X}" for cp in d.code_points[:8])
            more = " ..." if len(d.code_points) > 8 else ""
            example = f"; e.g. {d.examples[0].describe()}" if d.examples else ""
            return (f"{self.name}: {len(d.moved)} of {d.compared} strings moved, "
                    f"{len(d.code_points)} code points ({points}{more}) in {len(d.blocks)} "
                    f"blocks ({blocks}); ASCII {'AFFECTED' if d.ascii_affected else 'unaffected'}"
                    f"{example}")
        return f"{self.name}: {self.status}{': ' + self.detail if self.detail else ''}"

    def strcoll_headline(self, corpus: Corpus) -> str:
        """One line: where strcoll_l disagrees with the strxfrm order, on each image."""
        parts = []
        for side, result in (("candidate", self.candidate), ("baseline", self.baseline)):
            if result is None or not result.ok:
                continue
            text = (f"{side} {result.disagreements} of {result.pairs_checked} adjacent pairs")
            if result.disagreement_examples:
                first, second = result.disagreement_examples[0]
                if max(first, second) < len(corpus):
                    text += (f" (e.g. {show(corpus.strings[first])} sorts before "
                             f"{show(corpus.strings[second])} by strxfrm, after by strcoll)")
            parts.append(text)
        return f"{self.name}: strcoll_l disagrees with the strxfrm order: {'; '.join(parts)}"


def _agrees(observation: Observation | None) -> bool:
    return isinstance(observation, Value) and isinstance(observation.value, dict) \
        and observation.value.get("disagreements") == 0


@dataclass
class Comparison:
    """The comparison of all selected locales between baseline and candidate."""

    corpus: Corpus
    locales: list[str]
    outcomes: dict[str, LocaleOutcome]
    baseline: Survey
    candidate: Survey
    seconds: float

    def by_status(self, status: str, among: list[str] | None = None) -> list[LocaleOutcome]:
        """Outcomes with ``status`` (optionally only for ``among``), in locale order."""
        names = among if among is not None else self.locales
        return [self.outcomes[n] for n in names if self.outcomes[n].status == status]

    def strcoll_findings(self, among: list[str] | None = None) -> list[LocaleOutcome]:
        """Outcomes where strcoll_l disagrees with strxfrm on either image (``among`` only)."""
        names = among if among is not None else self.locales
        return [self.outcomes[n] for n in names if self.outcomes[n].strcoll_status() is not None]

    def shipped(self, side: str, among: list[str] | None = None) -> ElementSet:
        """The checked locales (``among`` only) that ``side`` ships, by policy name: the set
        observation a missing locale is judged on."""
        names = among if among is not None else self.locales
        results = (self.baseline if side == "baseline" else self.candidate).results
        return ElementSet.of(g.policy_name(n) for n in names
                             if results.get(n) is not None and results[n].status != "missing")

    def files_changed(self) -> dict[str, list[str]]:
        """Selected locales whose data files differ between the images: locale -> categories."""
        return {n: o.files_changed for n, o in self.outcomes.items() if o.files_changed}

    def summary(self) -> dict[str, Any]:
        """The whole comparison as plain data (the suite's artifact)."""
        return {
            "corpus": self.corpus.summary(),
            "locales_checked": len(self.locales),
            "changed": [o.locale for o in self.by_status("changed")],
            "missing": [o.locale for o in self.by_status("missing")],
            "errors": [o.locale for o in self.by_status("error")],
            "unchanged": [o.locale for o in self.by_status("unchanged")],
            "strcoll": {o.locale: str(o.strcoll_status()) for o in self.strcoll_findings()},
            "seconds": round(self.seconds, 1),
            "baseline": {"machine": self.baseline.machine, "seconds": self.baseline.seconds,
                         "sort_seconds": self.baseline.sort_seconds,
                         "distinct_collations": len(set(self.baseline.representative.values()))},
            "candidate": {"machine": self.candidate.machine, "seconds": self.candidate.seconds,
                          "sort_seconds": self.candidate.sort_seconds,
                          "distinct_collations": len(
                              set(self.candidate.representative.values()))},
            "locales": {n: o.summary() for n, o in self.outcomes.items()},
        }


def group_representatives(locales: list[str],
                          hashes: dict[str, dict[str, str]]) -> dict[str, str]:
    """Map each locale to the first locale with byte-identical LC_COLLATE and LC_CTYPE data.

    ``hashes`` is keyed by normalized locale name (:func:`~distrogate.collation.guest.
    locale_file_hashes`; the same in either layout). Locales without data (C, POSIX: built
    into glibc) represent themselves.
    """
    first: dict[tuple[str, str], str] = {}
    out: dict[str, str] = {}
    for name in locales:
        files = hashes.get(g.normalize_locale(name), hashes.get(name, {}))
        key = (files.get("LC_COLLATE", ""), files.get("LC_CTYPE", ""))
        if not all(key):
            out[name] = name
            continue
        out[name] = first.setdefault(key, name)
    return out


def order_path(locale: str) -> str:
    """Where the sorter leaves ``locale``'s order in the guest."""
    return f"{ORDERS_DIR}/{locale.replace('/', '_')}.u32"


def survey(machine: g.GuestLike, corpus: Corpus, locales: list[str] | None, *,
           dedupe: bool = True, jobs: int = 2, timeout: float = 3600,
           strcoll_stride: int = STRCOLL_STRIDE) -> Survey:
    """Sort ``corpus`` under ``locales`` (those the machine ships, if None) in ``machine``.

    ``locales`` may be spelled as another image or a policy spells them: each is matched with
    this machine's own locale of the same normalized name. Results are keyed by the given
    names; locales the machine does not ship get status ``missing``.
    """
    started = time.monotonic()
    corpus_path = g.install(machine, corpus)
    available = g.list_locales(machine)
    hashes = g.locale_file_hashes(machine)
    wanted = list(available) if locales is None else list(locales)
    names = own_names(wanted, available)
    present = list(dict.fromkeys(names[n] for n in wanted if n in names))
    reps = group_representatives(present, hashes) if dedupe else {n: n for n in present}
    to_sort = sorted(set(reps.values()), key=present.index)
    machine.succeed(["sh", "-c", f"rm -rf {ORDERS_DIR} && mkdir -p {ORDERS_DIR}"], timeout=60)
    sort_started = time.monotonic()
    results = g.run_sorter(machine, corpus_path, to_sort,
                           orders={n: order_path(n) for n in to_sort}, jobs=jobs,
                           timeout=timeout, strcoll_stride=strcoll_stride)
    sort_seconds = time.monotonic() - sort_started
    full: dict[str, g.SortResult] = {}
    for name in wanted:
        if name not in names:
            full[name] = g.SortResult(name, "missing", "-", 0, 0, "-", 0.0)
        else:
            full[name] = results[reps[names[name]]].standing_for(name)
    log.info("%s: sorted %d strings under %d locales (%d distinct collations) in %.1fs",
             machine.name, len(corpus), len(present), len(to_sort), sort_seconds)
    return Survey(machine.name, available, hashes, full,
                  {name: reps[own] for name, own in names.items()},
                  time.monotonic() - started, sort_seconds, names)


def own_names(wanted: list[str], available: list[str]) -> dict[str, str]:
    """``{wanted name: the available name of the same normalized locale}`` for the wanted
    names that are available (``C.UTF-8`` finds ``C.utf8``)."""
    index = g.by_normalized(available)
    out: dict[str, str] = {}
    for name in wanted:
        own = index.get(g.normalize_locale(name))
        if own is not None:
            out[name] = own
    return out


def compare_images(baseline: g.GuestLike, candidate: g.GuestLike, corpus: Corpus,
                   requested: list[str] | None = None, *, dedupe: bool = True, jobs: int = 2,
                   timeout: float = 3600, parallel: bool = True,
                   strcoll_stride: int = STRCOLL_STRIDE) -> Comparison:
    """Compare collation of ``baseline`` and ``candidate`` for ``requested`` locales.

    ``requested`` are policy names (``en_US.UTF-8``); None means every locale the baseline ships.
    Both images sort at once unless ``parallel`` is False (then each has the host to itself,
    which is how per-image figures are benchmarked). ``strcoll_stride``: see
    :data:`STRCOLL_STRIDE` (0 turns the strcoll verification off).
    Raises :class:`~distrogate.errors.InputError` for a name the baseline does not ship.
    """
    started = time.monotonic()
    available = g.list_locales(baseline)
    locales = g.select_locales(available, requested)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2 if parallel else 1) as pool:
        base_f = pool.submit(survey, baseline, corpus, locales, dedupe=dedupe, jobs=jobs,
                             timeout=timeout, strcoll_stride=strcoll_stride)
        cand_f = pool.submit(survey, candidate, corpus, locales, dedupe=dedupe, jobs=jobs,
                             timeout=timeout, strcoll_stride=strcoll_stride)
        base, cand = base_f.result(), cand_f.result()
    outcomes = _outcomes(locales, base, cand)
    _diff_changed(outcomes, base, cand, baseline, candidate, corpus, timeout)
    return Comparison(corpus, locales, outcomes, base, cand, time.monotonic() - started)


def _outcomes(locales: list[str], base: Survey, cand: Survey) -> dict[str, LocaleOutcome]:
    """Each locale's outcome from the two surveys (data hashes by normalized name)."""
    outcomes: dict[str, LocaleOutcome] = {}
    for name in locales:
        b, c = base.results[name], cand.results[name]
        norm = g.normalize_locale(name)
        bf, cf = base.hashes.get(norm, {}), cand.hashes.get(norm, {})
        files = sorted(k for k in set(bf) | set(cf) if bf.get(k) != cf.get(k))
        if c.status == "missing":
            outcome = LocaleOutcome(name, "missing", "the baseline ships this locale, the "
                                    "candidate does not", baseline=b, candidate=c)
        elif not b.ok or not c.ok:
            outcome = LocaleOutcome(name, "error", f"sorter: baseline {b.status}, candidate "
                                    f"{c.status}", baseline=b, candidate=c)
        elif b.fingerprint == c.fingerprint and b.included == c.included:
            outcome = LocaleOutcome(name, "unchanged", baseline=b, candidate=c)
        else:
            outcome = LocaleOutcome(name, "changed", baseline=b, candidate=c)
        outcome.files_changed = files
        outcomes[name] = outcome
    return outcomes


def _diff_changed(outcomes: dict[str, LocaleOutcome], base: Survey, cand: Survey,
                  baseline: g.GuestLike, candidate: g.GuestLike, corpus: Corpus,
                  timeout: float) -> None:
    """Fetch orders and diff them, once per distinct (baseline, candidate) fingerprint pair."""
    cache: dict[tuple[str, str], OrderDiff] = {}
    for outcome in outcomes.values():
        if outcome.status != "changed" or outcome.baseline is None or outcome.candidate is None:
            continue
        key = (outcome.baseline.fingerprint, outcome.candidate.fingerprint)
        if key not in cache:
            name = outcome.locale
            try:
                base_order = g.fetch_order(baseline, order_path(base.representative[name]),
                                           timeout=timeout)
                cand_order = g.fetch_order(candidate, order_path(cand.representative[name]),
                                           timeout=timeout)
                cache[key] = diff_orders(base_order, cand_order, corpus)
            except GuestError as exc:
                outcome.status, outcome.detail = "error", f"fetching orders: {exc}"
                continue
            log.info("collation %s: %s", name, LocaleOutcome(name, "changed",
                                                             diff=cache[key]).headline())
        outcome.diff = cache[key]
