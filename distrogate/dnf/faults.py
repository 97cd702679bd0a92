"""Fault classes and the scripts the mirror follows: pure data and logic, no I/O.

A :class:`Script` holds the rules for one client (one guest address): each rule names an
action, a path pattern (a glob on the request path below the mirror's prefix), the mirrors it
applies to (none: every mirror) and how many matching requests it hits (0: every one). The
first rule that matches a request and has hits left decides what the mirror does with it;
requests no rule takes are served as they are.

A fault class (:data:`FAULT_CLASSES`) on a target (:data:`TARGETS`: ``repomd`` is
``repodata/repomd.xml``, ``metadata`` the primary metadata, ``packages`` the RPMs) becomes a
script with :func:`scenario`. ``unresolvable_mirror`` is not about a path: its mirrorlist
names a host no resolver knows ahead of the mirrors that serve, for every target at once
(its target is ``mirrorlist``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Mirrors of the mirrorlist, by path prefix (``/m1/...``); each has a host name of its own.
MIRRORS = ("m1", "m2", "m3")
UNRESOLVABLE_HOST = "gone.mirror.invalid"
TARGETS: dict[str, str] = {
    "repomd": "repodata/repomd.xml",
    "metadata": "repodata/*primary*",
    "packages": "*.rpm",
}
ACTIONS = ("status", "reset", "stall", "slow", "truncate", "corrupt")

#: class → (action, what it does); a class's defaults come from the settings (see scenario)
FAULT_CLASSES: dict[str, str] = {
    "http_503": "HTTP 503 for the first N requests (any mirror)",
    "http_500": "HTTP 500 for the first N requests (any mirror)",
    "http_404_one_mirror": "HTTP 404 on the first mirror of the mirrorlist, the others serve",
    "reset_mid_body": "connection reset half-way through the body, first N requests",
    "stall": "no bytes for T seconds half-way through the body, first N requests",
    "slow_rate": "a rate below dnf's minrate (curl's low-speed limit) on the first mirror",
    "truncated_body": "the body cut short of its Content-Length, first N requests",
    "corrupt_body": "the body's bytes changed (a checksum mismatch), first N requests",
    "unresolvable_mirror": "a mirror host name in the mirrorlist that does not resolve",
}
#: classes whose scripts do not depend on a target
TARGETLESS = {"unresolvable_mirror": "mirrorlist"}
#: The quick profile's one target per path-based class: where the documented mechanism acts. Metadata
#: downloads are not retried by librepo the way packages are (5xx, reset, truncation, a stall
#: on repomd.xml or the metadata fail plain ``dnf makecache``); the low-speed abort needs a
#: transfer longer than dnf's ``timeout`` (a package); failing over after a checksum
#: mismatch and after a 5xx is a package download's business; a 404 mirror is skipped first
#: when ``repomd.xml`` is fetched.
QUICK_TARGETS: dict[str, str] = {
    "http_503": "metadata", "http_500": "packages", "http_404_one_mirror": "repomd",
    "reset_mid_body": "metadata", "stall": "metadata", "slow_rate": "packages",
    "truncated_body": "repomd", "corrupt_body": "packages",
}


@dataclass(frozen=True)
class Rule:
    """One scripted fault (see the module)."""

    action: str
    pattern: str
    mirrors: tuple[str, ...] = ()
    count: int = 0
    status: int = 503
    seconds: float = 0.0
    rate: int = 0

    def matches(self, mirror: str, path: str) -> bool:
        """Whether the request for ``path`` (below the mirror's prefix) on ``mirror`` is
        this rule's."""
        return ((not self.mirrors or mirror in self.mirrors)
                and fnmatch.fnmatchcase(path, self.pattern))

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON data."""
        doc = asdict(self)
        doc["mirrors"] = list(self.mirrors)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Rule:
        """The rule from :meth:`to_json`; raises ValueError for an unknown action."""
        if doc.get("action") not in ACTIONS:
            raise ValueError(f"unknown fault action {doc.get('action')!r}")
        return cls(action=str(doc["action"]), pattern=str(doc["pattern"]),
                   mirrors=tuple(str(m) for m in doc.get("mirrors", ())),
                   count=int(doc.get("count", 0)), status=int(doc.get("status", 503)),
                   seconds=float(doc.get("seconds", 0.0)), rate=int(doc.get("rate", 0)))


@dataclass
class Script:
    """The rules for one client and how often each has hit; ``hosts`` are the mirrorlist's
    host names in order (an entry :data:`UNRESOLVABLE_HOST` stands for a mirror that does not
    resolve)."""

    label: str = "clean"
    rules: tuple[Rule, ...] = ()
    hosts: tuple[str, ...] = MIRRORS
    hits: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hits = [0] * len(self.rules)

    def decide(self, mirror: str, path: str) -> Rule | None:
        """The rule that takes this request (its hit counted), or None: serve it."""
        for index, rule in enumerate(self.rules):
            if rule.matches(mirror, path) and (rule.count == 0 or self.hits[index] < rule.count):
                self.hits[index] += 1
                return rule
        return None

    def to_json(self) -> dict[str, Any]:
        """The script as JSON data (the control message the mirror takes)."""
        return {"label": self.label, "rules": [r.to_json() for r in self.rules],
                "hosts": list(self.hosts)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Script:
        """The script from :meth:`to_json` (ValueError if malformed)."""
        rules = tuple(Rule.from_json(r) for r in doc.get("rules", ()))
        return cls(label=str(doc.get("label", "")), rules=rules,
                   hosts=tuple(str(h) for h in doc.get("hosts", MIRRORS)))


@dataclass(frozen=True)
class FaultParameters:
    """How hard each class hits (from the suite's settings)."""

    transient_requests: int = 4
    stall_requests: int = 8
    stall_seconds: float = 5.0
    slow_rate: int = 400


def check_id(fault_class: str, target: str) -> str:
    """The id of a class on a target (a waiver names it alone): ``http_503@repomd``."""
    return f"{fault_class}@{target}"


def cells(classes: Sequence[str], targets: Sequence[str] | None) -> list[tuple[str, str]]:
    """The (class, target) pairs the suite runs: every one of ``targets`` for each class
    (``None``: the class's one target of :data:`QUICK_TARGETS`), or the one pseudo-target of
    a target-less class."""
    found: list[tuple[str, str]] = []
    for fault_class in classes:
        if fault_class in TARGETLESS:
            found.append((fault_class, TARGETLESS[fault_class]))
        elif targets is None:
            found.append((fault_class, QUICK_TARGETS[fault_class]))
        else:
            found += [(fault_class, t) for t in targets]
    return found


def scenario(fault_class: str, target: str, params: FaultParameters | None = None) -> Script:
    """The script of ``fault_class`` on ``target`` (raises KeyError for an unknown one)."""
    p = params or FaultParameters()
    label = check_id(fault_class, target)
    if fault_class not in FAULT_CLASSES:
        raise KeyError(fault_class)
    if fault_class == "unresolvable_mirror":
        return Script(label, (), (UNRESOLVABLE_HOST, *MIRRORS))
    pattern = TARGETS[target]
    n = p.transient_requests
    rule = {
        "http_503": Rule("status", pattern, count=n, status=503),
        "http_500": Rule("status", pattern, count=n, status=500),
        "http_404_one_mirror": Rule("status", pattern, mirrors=(MIRRORS[0],), status=404),
        "reset_mid_body": Rule("reset", pattern, count=n),
        "stall": Rule("stall", pattern, count=p.stall_requests, seconds=p.stall_seconds),
        "slow_rate": Rule("slow", pattern, mirrors=(MIRRORS[0],), rate=p.slow_rate),
        "truncated_body": Rule("truncate", pattern, count=n),
        "corrupt_body": Rule("corrupt", pattern, count=n),
    }[fault_class]
    return Script(label, (rule,))


def corrupt(body: bytes) -> bytes:
    """``body`` with bytes changed in its middle (same length): a checksum mismatch."""
    if not body:
        return body
    middle = len(body) // 2
    span = min(64, len(body) - middle)
    return body[:middle] + bytes(b ^ 0x5A for b in body[middle:middle + span]) + \
        body[middle + span:]
