"""Which Unicode block a code point belongs to (binary search over :data:`BLOCKS`)."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

from distrogate.collation.blocks_data import BLOCKS, BLOCKS_VERSION

__all__ = ["BLOCKS", "BLOCKS_VERSION", "NO_BLOCK", "block_of", "count_blocks"]

NO_BLOCK = "No_Block"
_STARTS = [start for start, _end, _name in BLOCKS]


def block_of(code_point: int) -> str:
    """The name of the Unicode block containing ``code_point`` (``No_Block`` if none)."""
    i = bisect.bisect_right(_STARTS, code_point) - 1
    if i >= 0:
        start, end, name = BLOCKS[i]
        if start <= code_point <= end:
            return name
    return NO_BLOCK


def count_blocks(code_points: Iterable[int]) -> dict[str, int]:
    """How many of ``code_points`` fall in each block, most affected first (ties by name)."""
    counts = Counter(block_of(cp) for cp in code_points)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
