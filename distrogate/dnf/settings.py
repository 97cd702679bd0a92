"""The DNF suite's settings: the policy's ``suites: {dnf: {...}}`` section.

Keys (all optional):

``profile``
    ``quick`` (default; the gate's: every fault class once, on the target where its
    documented mechanism acts (:data:`~distrogate.dnf.faults.QUICK_TARGETS`), and the
    ``makecache`` speed comparison) or ``nightly`` (every class on every target, both speed
    comparisons). The pytest option ``--dnf-profile`` overrides it; ``targets`` and ``speed``
    given explicitly override what the profile chooses.
``classes``
    The fault classes to run (default: every one of :data:`~distrogate.dnf.faults.FAULT_CLASSES`);
    an unknown name is an input error.
``targets``
    Where the path-based classes strike: ``repomd``, ``metadata``, ``packages`` (``all``;
    default: the profile's choice), every class on each of them.
``packages``
    The package set ``dnf install`` fetches under each fault (default ``[dg-tool]``: it pulls
    ``dg-lib`` and ``dg-base``); names of the suite's repository.
``wrapper``
    The fleet's retry wrapper: a command line the suite runs with dnf's arguments appended
    (``WRAPPER -y makecache``). Default ``dg-dnf-retry``: the suite's reference wrapper
    (:mod:`distrogate.dnf.wrapper`), which it installs in each guest. Any other command must
    exist in both images; one that does not is an input error naming it when the suite starts.
``wrapper_runs``
    ``on_raw_failure`` (default: the wrapper runs where plain dnf failed; where plain dnf
    survived, the wrapper's first attempt would be that same run) or ``always``.
``wrapper_budget``
    Seconds the reference wrapper may spend (default 90; 5 to 600).
``transient_requests``
    N of "the first N requests" (503, 500, reset, truncated, corrupt; default 4).
``stall_requests`` / ``stall_seconds``
    How many requests stall, and for how long (default 8 and 5 s: below dnf's default
    ``timeout`` of 30 s, so a healthy dnf waits it out).
``slow_rate``
    Bytes per second of the slow mirror (default 400, below dnf's default ``minrate`` 1000).
``speed``
    The clean-mirror speed comparisons: ``makecache``, ``install`` (default: the profile's,
    ``[makecache]`` quick, both nightly; ``[]``:
    none, and the speed runs are left out — a planted-fault run that judges fault classes
    only).
``speed_runs``
    Clean ``makecache`` and ``install`` runs per image for the speed comparison (default 5;
    at least 5: the statistical rule needs five a side). The two images' runs go in
    lockstep (each run starts on both at once), so that a busy host slows both alike.
``slowdown``
    The slowdown the speed rule calls large, as a ratio over 1 (default 0.5: 50 % slower).
``command_timeout``
    Bound on one dnf or wrapper run in a guest (default 150 s); a run that hits it is the
    outcome ``hang``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distrogate.dnf.faults import FAULT_CLASSES, TARGETS, FaultParameters, cells
from distrogate.dnf.repo import PACKAGES
from distrogate.errors import InputError
from distrogate.settingfields import names, number, section

REFERENCE_WRAPPER = "dg-dnf-retry"
PROFILES = ("quick", "nightly")
WRAPPER_RUNS = ("on_raw_failure", "always")
SPEED_STEPS = ("makecache", "install")
KEYS = ("profile", "classes", "targets", "packages", "wrapper", "wrapper_runs", "wrapper_budget",
        "transient_requests", "stall_requests", "stall_seconds", "slow_rate", "speed",
        "speed_runs",
        "slowdown", "command_timeout")


@dataclass(frozen=True)
class DnfSettings:
    """Typed settings of the DNF suite (see the module)."""

    profile: str = "quick"
    classes: tuple[str, ...] = tuple(FAULT_CLASSES)
    #: None: each class on its quick target (the quick profile's choice)
    targets: tuple[str, ...] | None = None
    packages: tuple[str, ...] = ("dg-tool",)
    wrapper: str = REFERENCE_WRAPPER
    wrapper_runs: str = "on_raw_failure"
    wrapper_budget: float = 90.0
    transient_requests: int = 4
    stall_requests: int = 8
    stall_seconds: float = 5.0
    slow_rate: int = 400
    speed: tuple[str, ...] = ("makecache",)
    speed_runs: int = 5
    slowdown: float = 0.5
    command_timeout: float = 150.0

    @property
    def faults(self) -> FaultParameters:
        """How hard the classes hit."""
        return FaultParameters(self.transient_requests, self.stall_requests,
                               self.stall_seconds, self.slow_rate)

    @property
    def cells(self) -> list[tuple[str, str]]:
        """The (class, target) cells the suite runs, in order."""
        return cells(self.classes, self.targets)

    @property
    def reference_wrapper(self) -> bool:
        """Whether the wrapper is the suite's own (installed by the suite)."""
        return self.wrapper.split()[0] == REFERENCE_WRAPPER




def parse(raw: Mapping[str, Any], options: Mapping[str, Any], where: str) -> DnfSettings:
    """The typed settings from the policy section ``raw`` and the ``--dnf-profile`` option;
    raises :class:`InputError` naming the key (``where`` is its place in the policy,
    ``suites.dnf``)."""
    raw = section(raw, KEYS, where)
    profile = options.get("dnf_profile") or raw.get("profile", "quick")
    if profile not in PROFILES:
        raise InputError(f"{where}.profile: unknown profile {profile!r} (expected one of "
                         f"{', '.join(PROFILES)})")
    nightly = profile == "nightly"
    wrapper = raw.get("wrapper", REFERENCE_WRAPPER)
    if not isinstance(wrapper, str) or not wrapper.strip() or "\n" in wrapper:
        raise InputError(f"{where}.wrapper: expected a command line such as "
                         f"{REFERENCE_WRAPPER!r}, got {wrapper!r}")
    runs = raw.get("wrapper_runs", "on_raw_failure")
    if runs not in WRAPPER_RUNS:
        raise InputError(f"{where}.wrapper_runs: expected one of {', '.join(WRAPPER_RUNS)}, "
                         f"got {runs!r}")
    d = DnfSettings()
    return DnfSettings(
        profile=str(profile),
        classes=names(raw, "classes", FAULT_CLASSES, where, what="fault class",
                      allow_all=True),
        targets=names(raw, "targets", TARGETS, where, what="target", allow_all=True)
        if "targets" in raw or nightly else None,
        packages=names(raw, "packages", (p.name for p in PACKAGES), where, what="package",
                       allow_all=True)
        if "packages" in raw else d.packages,
        wrapper=" ".join(wrapper.split()),
        wrapper_runs=str(runs),
        wrapper_budget=number(raw, "wrapper_budget", d.wrapper_budget, 5, 600, where),
        transient_requests=int(number(raw, "transient_requests", d.transient_requests, 1, 100,
                                       where)),
        stall_requests=int(number(raw, "stall_requests", d.stall_requests, 1, 100, where)),
        stall_seconds=number(raw, "stall_seconds", d.stall_seconds, 0.5, 120, where),
        slow_rate=int(number(raw, "slow_rate", d.slow_rate, 1, 1 << 30, where)),
        speed=names(raw, "speed", SPEED_STEPS, where, what="speed step", allow_none=True)
        if "speed" in raw or nightly else d.speed,
        speed_runs=int(number(raw, "speed_runs", d.speed_runs, 5, 50, where)),
        slowdown=number(raw, "slowdown", d.slowdown, 0.01, 10, where),
        command_timeout=number(raw, "command_timeout", d.command_timeout, 30, 1800, where),
    )
