"""fio inside a guest, against its dedicated data disk: the ioengine, TRIM and precondition, a
measured run.

The data disk is ``/dev/disk/by-id/virtio-<serial>`` (a raw file with ``cache=none`` and
``discard=unmap`` on the host, see :mod:`distrogate.fio.disk`). Before each measured run the
disk is TRIMmed (``blkdiscard``: the host file's blocks are punched out) and preconditioned (the
jobs' region written sequentially once), so that every run on either image starts from the same
state: reads hit written blocks, not holes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from distrogate.fio.jobs import JOB_FILE
from distrogate.fio.parse import FioOutputError, FioResult, parse_output
from distrogate.guest.machine import Machine

log = logging.getLogger(__name__)

GUEST_DIR = "/run/distrogate-fio"
GUEST_JOB_FILE = f"{GUEST_DIR}/jobs.fio"
ENGINES = ("io_uring", "libaio")


class FioRunFailed(Exception):
    """fio did not run, or its output could not be read: a lab or harness problem."""


@dataclass(frozen=True)
class GuestSetup:
    """What one image brings to the measurement: fio's version, the kernel, the ioengine
    (and why io_uring was not used), and the data disk's block-layer queue settings."""

    fio_version: str
    kernel: str
    engine: str
    engine_note: str
    queue: dict[str, str]


@dataclass(frozen=True)
class MeasuredRun:
    """One measured run on one image: its index, the raw JSON, the parsed metrics, and how
    long the preparation (TRIM, precondition) and the run took."""

    role: str
    index: int
    started: float
    prepare_seconds: float
    run_seconds: float
    output: str
    result: FioResult


_QUEUE_KEYS = ("scheduler", "nr_requests", "max_sectors_kb", "read_ahead_kb", "rotational")


def setup(machine: Machine, device: str) -> GuestSetup:
    """Install the job file, probe io_uring (a 64 KiB read-only fio run), read the versions
    and the disk's queue settings."""
    machine.succeed(["mkdir", "-p", GUEST_DIR], timeout=30)
    machine.write_file(GUEST_JOB_FILE, JOB_FILE.read_bytes())
    version = machine.succeed(["fio", "--version"], timeout=60).strip()
    kernel = machine.succeed(["uname", "-r"], timeout=30).strip()
    probe = machine.execute(["fio", "--name=probe", f"--filename={device}", "--ioengine=io_uring",
                             "--direct=1", "--rw=read", "--bs=4k", "--size=64k", "--readonly",
                             "--output-format=json"], timeout=120)
    if probe.exit_code == 0:
        engine, note = "io_uring", ""
    else:
        engine = "libaio"
        note = (f"io_uring unavailable (probe exit {probe.exit_code}: "
                f"{(probe.stderr_text or probe.stdout_text).strip()[-200:]})")
        log.info("%s: %s; using libaio", machine.name, note)
    script = ('d=$(basename "$(readlink -f "$1")"); shift; for k in "$@"; do '
              'printf "%s=%s\\n" "$k" "$(cat /sys/block/$d/queue/$k 2>/dev/null)"; done')
    out = machine.succeed(["sh", "-c", script, "queue", device, *_QUEUE_KEYS], timeout=30)
    queue = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return GuestSetup(version, kernel, engine, note, queue)


def prepare(machine: Machine, device: str, size_mib: int, engine: str) -> None:
    """TRIM the whole disk, then write the jobs' region sequentially once (1 MiB blocks)."""
    machine.succeed(["blkdiscard", "-f", device], timeout=120)
    machine.succeed(["fio", "--name=precondition", f"--filename={device}", f"--ioengine={engine}",
                     "--direct=1", "--rw=write", "--bs=1M", "--iodepth=8",
                     f"--size={size_mib}M", "--output-format=terse"], timeout=600)


def run(machine: Machine, device: str, *, jobs: tuple[str, ...], engine: str, runtime: int,
        ramp: int, size_mib: int) -> tuple[str, FioResult]:
    """Run the selected sections of the job file; fio's JSON text and its parsed metrics.
    Raises :class:`FioRunFailed` when fio fails or its output cannot be read."""
    env = {"DG_DEVICE": device, "DG_ENGINE": engine, "DG_RUNTIME": str(runtime),
           "DG_RAMP": str(ramp), "DG_SIZE": f"{size_mib}M"}
    argv = ["env", *(f"{k}={v}" for k, v in env.items()), "fio", "--output-format=json",
            *(f"--section={job}" for job in jobs), GUEST_JOB_FILE]
    bound = len(jobs) * (runtime + ramp) * 4 + 120
    result = machine.execute(argv, timeout=bound)
    text = result.stdout_text
    if result.exit_code != 0:
        raise FioRunFailed(f"{machine.name}: fio exited {result.exit_code}: "
                           f"{result.stderr_text.strip()[-400:]}")
    try:
        return text, parse_output(text, expected=jobs)
    except FioOutputError as exc:
        raise FioRunFailed(f"{machine.name}: {exc}") from None


def measured_run(machine: Machine, device: str, *, role: str, index: int, jobs: tuple[str, ...],
                 engine: str, runtime: int, ramp: int, size_mib: int) -> MeasuredRun:
    """Prepare the disk, then one measured run (see :func:`prepare` and :func:`run`)."""
    started = time.time()
    t0 = time.monotonic()
    prepare(machine, device, size_mib, engine)
    t1 = time.monotonic()
    text, parsed = run(machine, device, jobs=jobs, engine=engine, runtime=runtime, ramp=ramp,
                       size_mib=size_mib)
    t2 = time.monotonic()
    log.info("%s run %d on %s: prepare %.1fs, fio %.1fs", role, index, machine.name, t1 - t0,
             t2 - t1)
    return MeasuredRun(role, index, started, t1 - t0, t2 - t1, text, parsed)
