"""The fio suite's settings: the policy's ``suites: {fio: {...}}`` section.

Keys (all optional):

``profile``
    ``quick`` (default; CI and ``make test``) or ``nightly``: the defaults of the keys below.
    The pytest option ``--fio-profile`` overrides it.
``jobs``
    Job names from the shipped job file (default: every job): ``randread-4k-qd32``,
    ``randread-4k-qd1``, ``randwrite-4k-qd32``, ``seqread-128k``, ``seqwrite-128k``,
    ``randrw-70-30-4k``.
``metrics``
    Metrics judged per job (default: all): ``iops``, ``bw``, ``clat_p50``, ``clat_p99``,
    ``clat_p99_9``. The significance level is corrected (Bonferroni) for their number.
``runs``
    Measured runs per image (quick 6, nightly 9; at least 5).
``runtime`` / ``ramp``
    Seconds measured per job and per run, and seconds of ramp before measuring (quick 1 / 1,
    nightly 10 / 2).
``threshold``
    The practical threshold of a regression, a fraction in (0, 1) (default 0.10: 10 %).
``alpha``
    The significance level before correction, in (0, 1) (default 0.05).
``order``
    ``sequential`` (default: baseline, candidate, baseline, ... one machine at a time) or
    ``parallel`` (both machines at once, each run started together).
``disk_mib``
    Size of each image's data disk in MiB (default 256; 64 to 4096).
``confirm``
    ``true`` (default): a job with a regression is measured again (``runs`` more interleaved
    runs a side, that job alone), and its regressions stand only where those runs, judged on
    their own, show the job slower too (a regression of any of its metrics); otherwise they
    are *inconclusive* (a regression the repeat did not show: too noisy). ``false``: the first
    runs decide. On this TCG host one quiet run of the default pair judged seqwrite-128k +30 %
    (p=0.004) and the next one +8 % within noise: a single set of six runs a side is not
    enough to reject on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distrogate.errors import InputError
from distrogate.fio.jobs import JOBS, METRICS
from distrogate.settingfields import flag, integer, names, section

PROFILES = ("quick", "nightly")
ORDERS = ("sequential", "parallel")
KEYS = ("profile", "jobs", "metrics", "runs", "runtime", "ramp", "threshold", "alpha", "order",
        "disk_mib", "confirm")
#: per profile: runs per image, runtime and ramp seconds per job
PROFILE_DEFAULTS: dict[str, dict[str, int]] = {
    "quick": {"runs": 6, "runtime": 1, "ramp": 1},
    "nightly": {"runs": 9, "runtime": 10, "ramp": 2},
}


@dataclass(frozen=True)
class FioSettings:
    """Typed settings of the fio suite (see the module)."""

    profile: str = "quick"
    jobs: tuple[str, ...] = tuple(JOBS)
    metrics: tuple[str, ...] = tuple(METRICS)
    runs: int = 6
    runtime: int = 1
    ramp: int = 1
    threshold: float = 0.10
    alpha: float = 0.05
    order: str = "sequential"
    disk_mib: int = 256
    confirm: bool = True




def _fraction(raw: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InputError(f"{where}.{key}: expected a fraction strictly between 0 and 1 "
                         f"(0.10 is 10 %), got {value!r}")
    return float(value)


def parse(raw: Mapping[str, Any], options: Mapping[str, Any], where: str) -> FioSettings:
    """The typed settings from the policy section ``raw`` and the ``--fio-profile`` option;
    raises :class:`InputError` naming the key (``where``: ``suites.fio``)."""
    raw = section(raw, KEYS, where)
    profile = options.get("fio_profile") or raw.get("profile", "quick")
    if profile not in PROFILES:
        raise InputError(f"{where}.profile: unknown profile {profile!r} (expected one of "
                         f"{', '.join(PROFILES)})")
    order = raw.get("order", "sequential")
    if order not in ORDERS:
        raise InputError(f"{where}.order: unknown order {order!r} (expected one of "
                         f"{', '.join(ORDERS)})")
    defaults = PROFILE_DEFAULTS[profile]
    return FioSettings(
        profile=profile,
        jobs=names(raw, "jobs", JOBS, where),
        metrics=names(raw, "metrics", METRICS, where),
        runs=integer(raw, "runs", defaults["runs"], 5, 50, where),
        runtime=integer(raw, "runtime", defaults["runtime"], 1, 600, where),
        ramp=integer(raw, "ramp", defaults["ramp"], 0, 60, where),
        threshold=_fraction(raw, "threshold", 0.10, where),
        alpha=_fraction(raw, "alpha", 0.05, where),
        order=str(order),
        disk_mib=integer(raw, "disk_mib", 256, 64, 4096, where),
        confirm=flag(raw, "confirm", True, where),
    )
