"""Observations: what a check saw on one image, typed by kind.

A check records one observation per image (role ``baseline`` or ``candidate``); a comparison
rule (:mod:`distrogate.differential.rules`) turns the two into a delta. Every kind is a frozen
dataclass with ``to_dict``/``from_dict`` (plain JSON, as results.json stores it) and
``describe()`` (a short text for a person). Large observations are stored bounded: an output
keeps its tail and a digest of the whole, a set its first elements with a count and a digest,
an order a fingerprint with its length and first elements.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

OUTPUT_LIMIT = 4000  # characters of output kept (the tail)
SET_CAP = 200  # elements of a set kept in results.json
ORDER_HEAD = 8  # first elements of an order kept


class Kind(StrEnum):
    """The kinds of observation."""

    VALUE = "value"
    EXIT = "exit"
    OUTPUT = "output"
    SET = "set"
    ORDER = "order"
    SAMPLE = "sample"


def digest(data: str | bytes) -> str:
    """``sha256:<hex>`` of ``data`` (text as UTF-8)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


@dataclass(frozen=True)
class Value:
    """A plain JSON value: a version, a state, a count, a small mapping (``None``: absent)."""

    kind: ClassVar[Kind] = Kind.VALUE
    value: Any = None

    def describe(self) -> str:
        """The value as JSON text."""
        return "absent" if self.value is None else json.dumps(self.value, ensure_ascii=False,
                                                              sort_keys=True, default=str)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"kind": str(self.kind), "value": self.value}


@dataclass(frozen=True)
class Exit:
    """A command's exit status (``None``: it did not finish in time) and the tail of its output."""

    kind: ClassVar[Kind] = Kind.EXIT
    status: int | None
    tail: str = ""

    @classmethod
    def of(cls, status: int | None, output: str, limit: int = 400) -> Exit:
        """An exit observation keeping the last ``limit`` characters of ``output``."""
        return cls(status, _clip(output, limit))

    def describe(self) -> str:
        """``exit 0`` / ``timed out``, and the output's tail."""
        code = "timed out" if self.status is None else f"exit {self.status}"
        return f"{code}, output {self.tail!r}" if self.tail else code

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"kind": str(self.kind), "status": self.status, "tail": self.tail}


@dataclass(frozen=True)
class Output:
    """A command's output: its tail (``truncated`` when longer), its length and a digest of
    the whole text, so that two outputs compare exactly even when only the tail is kept."""

    kind: ClassVar[Kind] = Kind.OUTPUT
    text: str
    length: int
    digest: str
    truncated: bool = False

    @classmethod
    def of(cls, text: str, limit: int = OUTPUT_LIMIT) -> Output:
        """An output observation of ``text``."""
        return cls(_clip(text, limit), len(text), digest(text), len(text) > limit)

    def describe(self) -> str:
        """The text (or its tail) with its length."""
        shown = repr(self.text[-200:])
        return f"{shown} ({self.length} characters{', tail shown' if self.truncated else ''})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"kind": str(self.kind), "text": self.text, "length": self.length,
                "digest": self.digest, "truncated": self.truncated}


@dataclass(frozen=True)
class ElementSet:
    """A set of strings (locales, units, files), sorted. In memory it holds every element;
    results.json keeps the first :data:`SET_CAP` with the count and a digest of all."""

    kind: ClassVar[Kind] = Kind.SET
    elements: tuple[str, ...]
    count: int
    digest: str

    @classmethod
    def of(cls, elements: Iterable[str]) -> ElementSet:
        """A set observation of ``elements`` (duplicates dropped, sorted)."""
        items = tuple(sorted(set(elements)))
        return cls(items, len(items), digest("\n".join(items)))

    @property
    def complete(self) -> bool:
        """Whether every element is held (not a capped copy read from results.json)."""
        return len(self.elements) == self.count

    def describe(self) -> str:
        """The count and the first elements."""
        head = ", ".join(self.elements[:10])
        more = " …" if self.count > 10 else ""
        return f"{self.count} elements: {head}{more}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (at most :data:`SET_CAP` elements)."""
        return {"kind": str(self.kind), "elements": list(self.elements[:SET_CAP]),
                "count": self.count, "digest": self.digest}


@dataclass(frozen=True)
class Order:
    """An order fingerprint: a digest of the ordered sequence, its length and first elements."""

    kind: ClassVar[Kind] = Kind.ORDER
    digest: str
    length: int
    head: tuple[str, ...] = ()

    @classmethod
    def of(cls, sequence: Sequence[Any], head: int = ORDER_HEAD) -> Order:
        """The fingerprint of ``sequence`` (elements taken as text, one per line)."""
        items = [str(x) for x in sequence]
        return cls(digest("\n".join(items)), len(items), tuple(items[:head]))

    def describe(self) -> str:
        """The fingerprint's start, the length and the first elements."""
        head = ", ".join(self.head)
        return f"{self.digest[:19]}… of {self.length} elements ({head}{' …' if head else ''})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"kind": str(self.kind), "digest": self.digest, "length": self.length,
                "head": list(self.head)}


@dataclass(frozen=True)
class Sample:
    """Repeated measurements of one quantity (seconds, MiB/s) with their unit."""

    kind: ClassVar[Kind] = Kind.SAMPLE
    values: tuple[float, ...]
    unit: str
    note: str = field(default="")

    @classmethod
    def of(cls, values: Iterable[float], unit: str, note: str = "") -> Sample:
        """A sample of ``values`` in ``unit``."""
        return cls(tuple(float(v) for v in values), unit, note)

    def describe(self) -> str:
        """The count and the median."""
        if not self.values:
            return f"no measurements ({self.unit})"
        ordered = sorted(self.values)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        return f"median {median:.4g} {self.unit} of {len(self.values)} measurements"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"kind": str(self.kind), "values": list(self.values), "unit": self.unit,
                "note": self.note}


Observation = Value | Exit | Output | ElementSet | Order | Sample


def observation_from_dict(doc: dict[str, Any]) -> Observation:
    """An observation from its JSON form (dispatching on ``kind``)."""
    kind = Kind(doc["kind"])
    if kind is Kind.VALUE:
        return Value(doc.get("value"))
    if kind is Kind.EXIT:
        return Exit(doc.get("status"), doc.get("tail", ""))
    if kind is Kind.OUTPUT:
        return Output(doc["text"], int(doc["length"]), doc["digest"], bool(doc.get("truncated")))
    if kind is Kind.SET:
        return ElementSet(tuple(doc["elements"]), int(doc["count"]), doc["digest"])
    if kind is Kind.ORDER:
        return Order(doc["digest"], int(doc["length"]), tuple(doc.get("head", ())))
    return Sample(tuple(float(v) for v in doc["values"]), doc["unit"], doc.get("note", ""))
