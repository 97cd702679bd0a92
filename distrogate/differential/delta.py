"""A delta: one check's comparison of the candidate with the baseline, with both observations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from distrogate.differential.observations import Observation, observation_from_dict
from distrogate.differential.status import DeltaStatus


@dataclass(frozen=True)
class Judgement:
    """What a rule decided: a status and one human sentence naming what changed."""

    status: DeltaStatus
    detail: str


class Rule(Protocol):
    """A comparison rule: turns the baseline's and the candidate's observations into a
    :class:`Judgement`. ``None`` stands for "no observation" (the side could not be observed)."""

    @property
    def name(self) -> str:
        """The rule's name, as results.json records it."""

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Compare the two sides."""


@dataclass(frozen=True)
class Delta:
    """One check's comparison: ``id`` (a waiver can name it), ``title`` (what the check is
    about, for a person), the rule that decided, the status, both observations, and ``detail``
    (one sentence naming what changed)."""

    id: str
    status: DeltaStatus
    title: str = ""
    rule: str = ""
    detail: str = ""
    baseline: Observation | None = None
    candidate: Observation | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (as results.json stores it)."""
        return {"id": self.id, "status": str(self.status), "title": self.title,
                "rule": self.rule, "detail": self.detail,
                "baseline": self.baseline.to_dict() if self.baseline is not None else None,
                "candidate": self.candidate.to_dict() if self.candidate is not None else None}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Delta:
        """The inverse of :meth:`to_dict`."""
        base, cand = doc.get("baseline"), doc.get("candidate")
        return cls(doc["id"], DeltaStatus(doc["status"]), doc.get("title", ""),
                   doc.get("rule", ""), doc.get("detail", ""),
                   observation_from_dict(base) if base else None,
                   observation_from_dict(cand) if cand else None)

    def sentence(self) -> str:
        """``id: title`` (or the title alone when it already names the id), for reasons."""
        if not self.title:
            return f"{self.id}: {self.detail}" if self.detail else self.id
        return self.title if self.title.startswith(self.id) else f"{self.id}: {self.title}"


def compare(check_id: str, rule: Rule, baseline: Observation | None,
            candidate: Observation | None, *, title: str = "") -> Delta:
    """Apply ``rule`` to the two observations of ``check_id``: the :class:`Delta`."""
    judged = rule.decide(baseline, candidate)
    return Delta(check_id, judged.status, title, rule.name, judged.detail, baseline, candidate)


def overall(deltas: Iterable[Delta]) -> DeltaStatus | None:
    """The one status that sums up several deltas (the most severe), None for none."""
    return max((d.status for d in deltas), key=lambda s: s.rank, default=None)
