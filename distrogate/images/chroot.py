"""Run commands inside an image tree on the host (private mount, PID, IPC and UTS namespaces;
without ``network``, a network namespace of their own with no interface but a down loopback).

Spec commands run as root at build time, as in any image builder; what they can reach of the
host is kept small: a ``/dev`` of their own (a tmpfs with the device nodes mmdebstrap itself
creates, a private devpts and shm, never the host's ``/dev``), a read-only ``/sys``, a
``/proc`` of their own PID namespace, no network, no services started (policy-rc.d).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from distrogate import proc

_POLICY_RC = "#!/bin/sh\n# distrogate: no services start while the image is built\nexit 101\n"

#: mmdebstrap's own device set (its @devfiles), without the host's console.
DEV_NODES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
             ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
             ("ptmx", "pts/ptmx"))


def minimal_dev_script(dev: str) -> str:
    """Shell commands that mount a minimal ``/dev`` at ``dev`` (quoted already)."""
    steps = [f"mount -t tmpfs -o mode=0755,nosuid,noexec,size=16m devtmp {dev}"]
    steps += [f"mknod -m 666 {dev}/{name} c {major} {minor}" for name, major, minor in DEV_NODES]
    steps += [f"ln -s {target} {dev}/{name}" for name, target in DEV_LINKS]
    steps += [f"mkdir -m 755 {dev}/pts {dev}/shm",
              f"mount -t devpts -o newinstance,ptmxmode=666,mode=620,gid=5 devpts {dev}/pts",
              f"mount -t tmpfs -o mode=1777,nosuid,nodev shm {dev}/shm"]
    return " && ".join(steps)


def chroot_run(root: Path, command: str, *, timeout: float, network: bool = False) -> proc.Completed:
    """Run ``command`` (a shell string, as written in a spec) with ``root`` as ``/``.

    /proc, /sys (read-only) and a minimal /dev are mounted in a private mount namespace that
    vanishes with the command; services are kept from starting (policy-rc.d). With
    ``network`` (package installs from the host's archive) the command shares the host's
    network and sees its resolver configuration; without it, it has no network at all.
    """
    policy = root / "usr/sbin/policy-rc.d"
    resolv = root / "etc/resolv.conf"
    policy.write_text(_POLICY_RC)
    policy.chmod(0o755)
    saved_resolv = None
    if network:
        if resolv.is_symlink() or resolv.exists():
            saved_resolv = resolv.with_name(".resolv.conf.distrogate")
            resolv.rename(saved_resolv)
        host_resolv = Path("/etc/resolv.conf")
        resolv.write_text(host_resolv.read_text() if host_resolv.exists() else "")
    r = shlex.quote(str(root))
    (root / "dev").mkdir(exist_ok=True)
    script = (
        f"mount -t proc proc {r}/proc && mount -t sysfs -o ro sysfs {r}/sys && "
        f"{minimal_dev_script(r + '/dev')} && exec chroot {r} /bin/sh -ec {shlex.quote(command)}"
    )
    namespaces = ["--mount", "--pid", "--ipc", "--uts", *([] if network else ["--net"])]
    try:
        return proc.run(
            ["unshare", *namespaces, "--propagation", "private", "--fork", "--kill-child", "--",
             "sh", "-c", script],
            timeout=timeout,
            env={"DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"},
        )
    finally:
        policy.unlink(missing_ok=True)
        if network:
            resolv.unlink(missing_ok=True)
            if saved_resolv is not None:
                saved_resolv.rename(resolv)
