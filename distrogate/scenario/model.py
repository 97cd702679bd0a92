"""The typed model of a roll-forward scenario (see :mod:`distrogate.scenario.schema` for the
YAML form and its checks).

A scenario starts with ``cluster.nodes`` nodes named ``n1``..``nN`` on the baseline image, with
``n1`` the primary, and runs its ``steps`` in order. Every value is frozen; a step is one of
:class:`AddStep`, :class:`CatchUpStep`, :class:`SwitchoverStep`, :class:`RemoveStep`,
:class:`FaultStep`, :class:`CheckStep`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import ClassVar


class Role(StrEnum):
    """The image a node boots from, by its role in the gate run."""

    BASELINE = "baseline"
    CANDIDATE = "candidate"


class ServiceSource(StrEnum):
    """Where PostgreSQL comes from: the nspawn container tree (the same version on both
    images) or the image itself."""

    CONTAINER = "container"
    IMAGE = "image"


class StepKind(StrEnum):
    """The kinds of step, as spelled in the YAML."""

    ADD = "add"
    CATCH_UP = "catch_up"
    SWITCHOVER = "switchover"
    REMOVE = "remove"
    FAULT = "fault"
    CHECK = "check"


class FaultKind(StrEnum):
    """The faults a step can inject."""

    KILL_PRIMARY = "kill_primary"  # kill -9 of the primary's postgres
    CRASH = "crash"  # the node's host crashes (the VM is reset without shutdown)
    PARTITION = "partition"  # the node is cut off from the cluster network for ``seconds``
    LINK_LOSS = "link_loss"  # the node's link drops packets for ``seconds``
    REBOOT = "reboot"  # a clean reboot of the node


class Check(StrEnum):
    """The checks a ``check`` step can run."""

    CONVERGE = "converge"  # every node holds the same table checksums
    AMCHECK = "amcheck"  # pg_amcheck --all --heapallindexed is clean on every node
    COLLATION_VERSIONS = "collation_versions"  # old and new nodes' collation versions agree
    NO_LOST_WRITES = "no_lost_writes"  # the history's acknowledged writes are all present


@dataclass(frozen=True)
class Cluster:
    """The initial cluster: ``nodes`` nodes on the baseline, each with a data volume of
    ``volume_gib``; ``backup_every_s`` is the fleet's backup schedule: an ``add`` takes a
    fresh incremental backup first when the newest one is older than that (0: before every
    add), and otherwise restores from the newest one and the archived WAL since."""

    nodes: int
    volume_gib: int
    backup_every_s: int = 600


@dataclass(frozen=True)
class Service:
    """Where PostgreSQL comes from, and whether the cluster network runs over IPsec."""

    source: ServiceSource = ServiceSource.CONTAINER
    ipsec: bool = True


@dataclass(frozen=True)
class Database:
    """The database's locale (its default collation, that of the text indexes)."""

    locale: str = "en_US.UTF-8"


@dataclass(frozen=True)
class Data:
    """The initial data: ``rows`` rows, with text indexes when ``text_index``."""

    rows: int = 2000
    text_index: bool = True


@dataclass(frozen=True)
class Load:
    """The client load: ``writers`` concurrent writers at ``rate`` writes per second each."""

    writers: int = 2
    rate: float = 20.0


@dataclass(frozen=True)
class AddStep:
    """Add ``node`` booted from ``image``, restored from the backup, following the primary."""

    kind: ClassVar[StepKind] = StepKind.ADD
    node: str
    image: Role


@dataclass(frozen=True)
class CatchUpStep:
    """Wait until ``node`` replays within ``max_lag_bytes`` of the primary (at most
    ``timeout`` seconds)."""

    kind: ClassVar[StepKind] = StepKind.CATCH_UP
    node: str
    max_lag_bytes: int = 0
    timeout: float = 300.0


@dataclass(frozen=True)
class SwitchoverStep:
    """A controlled switchover: ``to`` becomes the primary."""

    kind: ClassVar[StepKind] = StepKind.SWITCHOVER
    to: str


@dataclass(frozen=True)
class RemoveStep:
    """Remove ``node`` from the cluster (it may not be the primary)."""

    kind: ClassVar[StepKind] = StepKind.REMOVE
    node: str


@dataclass(frozen=True)
class FaultStep:
    """Inject ``fault`` on ``node`` (for ``kill_primary``, the primary at that point: filled
    in when the scenario loads) lasting ``seconds`` where a duration applies."""

    kind: ClassVar[StepKind] = StepKind.FAULT
    fault: FaultKind
    node: str
    seconds: float = 10.0


@dataclass(frozen=True)
class CheckStep:
    """Run the checks ``what``, in that order."""

    kind: ClassVar[StepKind] = StepKind.CHECK
    what: tuple[Check, ...]


Step = AddStep | CatchUpStep | SwitchoverStep | RemoveStep | FaultStep | CheckStep


@dataclass(frozen=True)
class Scenario:
    """One roll-forward scenario, checked (see :func:`distrogate.scenario.schema.load`)."""

    name: str
    description: str
    cluster: Cluster
    service: Service
    database: Database
    data: Data
    load: Load
    steps: tuple[Step, ...]
    path: Path | None = field(default=None, compare=False)

    def initial_nodes(self) -> tuple[str, ...]:
        """The nodes the cluster starts with: ``n1``..``nN``, all on the baseline."""
        return tuple(f"n{i}" for i in range(1, self.cluster.nodes + 1))

    @property
    def initial_primary(self) -> str:
        """The primary when the scenario starts."""
        return "n1"


def images_needed(scenario: Scenario) -> tuple[Role, ...]:
    """The images ``scenario`` boots, in role order: the baseline always (the initial
    nodes), the candidate when a step adds a node from it."""
    roles = {Role.BASELINE} | {s.image for s in scenario.steps if isinstance(s, AddStep)}
    return tuple(r for r in Role if r in roles)


def as_control(scenario: Scenario) -> Scenario:
    """The control run of ``scenario``: the same steps with every node on the baseline (the
    baseline rolled forward onto itself)."""
    steps = tuple(replace(s, image=Role.BASELINE) if isinstance(s, AddStep) else s
                  for s in scenario.steps)
    return replace(scenario, steps=steps)
