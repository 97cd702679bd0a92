"""What moved between two orders of the same corpus.

The moved strings are the complement of a longest common subsequence of the two orders (a
longest increasing subsequence of baseline positions read in candidate order): the fewest
strings that, taken out, leave both orders agreeing. Their subject code points, Unicode blocks,
a few flipped pairs as examples, and whether any two plain-ASCII strings swapped are reported.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from distrogate.collation.blocks import block_of, count_blocks
from distrogate.collation.corpus import NO_SUBJECT, Corpus

MAX_EXAMPLES = 8
_WINDOW = 64


@dataclass(frozen=True)
class Flip:
    """Two strings whose relative order changed: ``first`` now sorts before ``second``."""

    first: str
    second: str

    def describe(self) -> str:
        """``'ö' (U+00F6) now sorts before 'z' (U+007A), was after``."""
        return (f"{show(self.first)} now sorts before {show(self.second)}, was after")


@dataclass
class OrderDiff:
    """The difference between a baseline order and a candidate order."""

    compared: int  # strings in both orders
    moved: list[int] = field(default_factory=list)  # corpus indices of moved strings
    code_points: list[int] = field(default_factory=list)  # sorted
    blocks: dict[str, int] = field(default_factory=dict)  # block -> moved code points
    ascii_affected: bool = False
    ascii_flips: list[Flip] = field(default_factory=list)
    examples: list[Flip] = field(default_factory=list)
    only_in_baseline: int = 0
    only_in_candidate: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything moved (or the sets of sortable strings differ)."""
        return bool(self.moved) or bool(self.only_in_baseline) or bool(self.only_in_candidate)

    def summary(self) -> dict[str, object]:
        """The figures as plain data (for findings and JSON)."""
        return {
            "strings_compared": self.compared,
            "strings_moved": len(self.moved),
            "code_points_moved": len(self.code_points),
            "blocks": self.blocks,
            "ascii_affected": self.ascii_affected,
            "examples": [f.describe() for f in self.examples],
            "ascii_examples": [f.describe() for f in self.ascii_flips],
            "code_points_sample": [f"U+{cp:04X}" for cp in self.code_points[:40]],
            "only_in_baseline": self.only_in_baseline,
            "only_in_candidate": self.only_in_candidate,
        }


def show(text: str) -> str:
    """A string for a person: quoted, with its code points (``'ö' (U+00F6)``)."""
    printable = "".join(ch if unicodedata.category(ch)[0] not in "CZ" or ch == " "
                        else f"\\u{ord(ch):04x}" for ch in text)
    points = " ".join(f"U+{ord(ch):04X}" for ch in text)
    return f"'{printable}' ({points})"


def longest_increasing(seq: Sequence[int]) -> list[int]:
    """Indices into ``seq`` of one longest strictly increasing subsequence (O(n log n))."""
    tails: list[int] = []  # tails[k]: smallest tail value of an increasing run of length k+1
    tail_at: list[int] = []  # index in seq of that tail
    parent = [-1] * len(seq)
    for i, value in enumerate(seq):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_at.append(i)
        else:
            tails[k] = value
            tail_at[k] = i
        parent[i] = tail_at[k - 1] if k else -1
    out: list[int] = []
    i = tail_at[-1] if tail_at else -1
    while i != -1:
        out.append(i)
        i = parent[i]
    out.reverse()
    return out


def diff_orders(baseline: Sequence[int], candidate: Sequence[int], corpus: Corpus) -> OrderDiff:
    """Compare two orders (sequences of corpus indices, first = smallest) of ``corpus``."""
    in_base = set(baseline)
    in_cand = set(candidate)
    common = in_base & in_cand
    base = [i for i in baseline if i in common] if len(common) != len(baseline) else baseline
    cand = [i for i in candidate if i in common] if len(common) != len(candidate) else candidate
    pos_base = {idx: p for p, idx in enumerate(base)}
    seq = [pos_base[idx] for idx in cand]
    keep = longest_increasing(seq)
    kept = set(keep)
    moved = [cand[k] for k in range(len(cand)) if k not in kept]
    result = OrderDiff(compared=len(common), moved=moved,
                       only_in_baseline=len(in_base - common),
                       only_in_candidate=len(in_cand - common))
    if not moved:
        return result
    points: set[int] = set()
    for idx in moved:
        subject = corpus.subjects[idx]
        if subject != NO_SUBJECT:
            points.add(subject)
        else:
            points.update(ord(ch) for ch in corpus.strings[idx])
    result.code_points = sorted(points)
    result.blocks = count_blocks(points)
    ascii_mask = corpus.ascii_mask
    base_ascii = [i for i in base if ascii_mask[i]]
    cand_ascii = [i for i in cand if ascii_mask[i]]
    result.ascii_affected = base_ascii != cand_ascii
    if result.ascii_affected:
        result.ascii_flips = _examples(base_ascii, cand_ascii, corpus, limit=3)
    result.examples = _examples(base, cand, corpus, limit=MAX_EXAMPLES, moved=moved)
    return result


def _examples(base: Sequence[int], cand: Sequence[int], corpus: Corpus, *, limit: int,
              moved: Sequence[int] | None = None) -> list[Flip]:
    """Up to ``limit`` flipped pairs, preferring one per Unicode block and short strings."""
    pos_base = {idx: p for p, idx in enumerate(base)}
    pos_cand = {idx: p for p, idx in enumerate(cand)}
    if moved is None:
        seq = [pos_base[idx] for idx in cand]
        kept = set(longest_increasing(seq))
        moved = [cand[k] for k in range(len(cand)) if k not in kept]
    by_block: dict[str, list[int]] = {}
    for idx in moved:
        subject = corpus.subjects[idx]
        cp = subject if subject != NO_SUBJECT else ord(corpus.strings[idx][0])
        by_block.setdefault(block_of(cp), []).append(idx)
    for items in by_block.values():
        items.sort(key=lambda i: (len(corpus.strings[i]), i))
    order = sorted(by_block, key=lambda b: (-len(by_block[b]), b))
    out: list[Flip] = []
    rounds = 0
    while len(out) < limit and rounds < limit:
        for block in order:
            items = by_block[block]
            if rounds < len(items) and len(out) < limit:
                flip = _flip_near(items[rounds], base, cand, pos_base, pos_cand, corpus)
                if flip and flip not in out:
                    out.append(flip)
        rounds += 1
    return out


def _flip_near(idx: int, base: Sequence[int], cand: Sequence[int], pos_base: dict[int, int],
               pos_cand: dict[int, int], corpus: Corpus) -> Flip | None:
    """A string near ``idx`` in candidate order whose order relative to ``idx`` changed."""
    pc, pb = pos_cand[idx], pos_base[idx]
    for distance in range(1, _WINDOW + 1):
        for other_pos in (pc + distance, pc - distance):
            if not 0 <= other_pos < len(cand):
                continue
            other = cand[other_pos]
            now_before = pc < other_pos
            was_before = pb < pos_base[other]
            if now_before != was_before:
                first, second = (idx, other) if now_before else (other, idx)
                return Flip(corpus.strings[first], corpus.strings[second])
    return None
