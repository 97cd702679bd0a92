"""Choosing KVM or TCG: KVM only if a bounded test boot under KVM gets through.

On these machines /dev/kvm opens but guests hang right after "Probing EDD" (or QEMU aborts on
an MSR), so the probe boots the image's kernel with no root disk under KVM and waits a few
seconds for it to reach the point of looking for a root filesystem. The answer is cached per
host kernel and QEMU binary; ``DISTROGATE_ACCEL=kvm|tcg`` overrides it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
import uuid
from pathlib import Path

from distrogate import paths
from distrogate.fsutil import atomic_write_json
from distrogate.lab import virt
from distrogate.lab.console import tail
from distrogate.lab.xml import Accel, DomainSpec, domain_xml

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 20.0
_REACHED = (b"VFS: Cannot open root device", b"Unable to mount root fs", b"Run /init",
            b"Kernel panic")


def _cache_key() -> str:
    qemu = Path("/usr/bin/qemu-system-x86_64")
    stamp = int(qemu.stat().st_mtime) if qemu.exists() else 0
    return f"{platform.release()}|{stamp}"


def choose_accel(conn: virt.Connection, kernel: Path, workdir: Path, prefix: str) -> Accel:
    """KVM if it demonstrably boots a kernel here, else TCG; the reason is logged."""
    override = os.environ.get("DISTROGATE_ACCEL", "").lower()
    if override in ("kvm", "tcg"):
        log.info("acceleration: %s (DISTROGATE_ACCEL)", override)
        return Accel.KVM if override == "kvm" else Accel.TCG
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        log.info("acceleration: TCG (no usable /dev/kvm)")
        return Accel.TCG
    cache = paths.home() / "accel.json"
    key = _cache_key()
    try:
        known = json.loads(cache.read_text())
        if known.get("key") == key:
            log.info("acceleration: %s (cached probe: %s)", known["accel"], known["reason"])
            return Accel(known["accel"])
    except (OSError, ValueError, KeyError):
        pass
    accel, reason = _probe(conn, kernel, workdir, prefix)
    log.info("acceleration: %s (%s)", "KVM" if accel is Accel.KVM else "TCG", reason)
    atomic_write_json(cache, {"key": key, "accel": str(accel), "reason": reason})
    return accel


def _probe(conn: virt.Connection, kernel: Path, workdir: Path, prefix: str) -> tuple[Accel, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    console = workdir / "kvm-probe.log"
    console.unlink(missing_ok=True)
    spec = DomainSpec(name=f"{prefix}kvmprobe", uuid=str(uuid.uuid4()), accel=Accel.KVM,
                      disk=None, console_log=console, nics=(),
                      memory_mib=256, vcpus=1, kernel=kernel,
                      cmdline="console=ttyS0 panic=0 root=/dev/nonexistent")
    try:
        domain = virt.create(conn, domain_xml(spec))
    except virt.LibvirtError as exc:
        return Accel.TCG, f"KVM guest would not start: {str(exc).splitlines()[0][:200]}"
    try:
        deadline = time.monotonic() + PROBE_TIMEOUT
        while time.monotonic() < deadline:
            data = tail(console)
            if any(marker in data for marker in _REACHED):
                return Accel.KVM, "a KVM test boot reached the root-mount stage"
            if not domain.isActive():
                return Accel.TCG, "the KVM test guest died during boot"
            time.sleep(0.2)
        last = tail(console, 300).decode(errors="replace").strip().splitlines()
        return Accel.TCG, (f"a KVM test boot hung for {PROBE_TIMEOUT:g}s"
                           + (f" after {last[-1]!r}" if last else ""))
    finally:
        with contextlib.suppress(virt.LibvirtError):
            domain.destroy()
        console.unlink(missing_ok=True)
