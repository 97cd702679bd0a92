"""Run commands inside an image tree on the host (private mount and PID namespaces)."""

from __future__ import annotations

import shlex
from pathlib import Path

from distrogate import proc

_POLICY_RC = "#!/bin/sh\n# distrogate: no services start while the image is built\nexit 101\n"


def chroot_run(root: Path, command: str, *, timeout: float, network: bool = False) -> proc.Completed:
    """Run ``command`` (a shell string, as written in a spec) with ``root`` as ``/``.

    /proc, /sys and /dev are mounted in a private mount namespace that vanishes with the
    command; services are kept from starting (policy-rc.d). With ``network`` the host's
    resolver configuration is visible so apt can fetch packages.
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
    script = (
        f"mount -t proc proc {r}/proc && mount -t sysfs sysfs {r}/sys && "
        f"mount --rbind /dev {r}/dev && exec chroot {r} /bin/sh -ec {shlex.quote(command)}"
    )
    try:
        return proc.run(
            ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--", "sh", "-c", script],
            timeout=timeout,
            env={"DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"},
        )
    finally:
        policy.unlink(missing_ok=True)
        if network:
            resolv.unlink(missing_ok=True)
            if saved_resolv is not None:
                saved_resolv.rename(resolv)
