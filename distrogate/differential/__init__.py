"""The differential model: how what the candidate did compares with what the baseline did.

The one model every suite uses:

* a check records an *observation* per image (:mod:`.observations`: value, exit, output, set,
  order, sample);
* a *comparison rule* (:mod:`.rules`: :class:`Exact`, :class:`SetRule`, :class:`Ordering`,
  :class:`Bound`; :mod:`.numeric`: :class:`Numeric`) turns the two sides into a
  :class:`Delta` with a typed :class:`DeltaStatus` and one sentence naming what changed;
* results.json carries the deltas with both observations; the verdict and the report read them.
"""

from distrogate.differential.delta import Delta, Judgement, Rule, compare, overall
from distrogate.differential.numeric import Direction, Numeric, Undecided
from distrogate.differential.observations import (
    ElementSet,
    Exit,
    Kind,
    Observation,
    Order,
    Output,
    Sample,
    Value,
    observation_from_dict,
)
from distrogate.differential.rules import Bound, Exact, Ordering, SetRule
from distrogate.differential.status import DeltaStatus, bound_verdict, judge

ROLES = ("baseline", "candidate")

__all__ = [
    "ROLES", "Bound", "Delta", "DeltaStatus", "Direction", "ElementSet", "Exact", "Exit", "Judgement",
    "Kind", "Numeric", "Observation", "Order", "Ordering", "Output", "Rule", "Sample", "SetRule",
    "Undecided", "Value", "bound_verdict", "compare", "judge", "observation_from_dict", "overall",
]
