"""mmdebstrap, the one way a Debian tree is bootstrapped (image builds and nspawn trees), and
what a bootstrapped tree holds."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from distrogate import proc
from distrogate.images.aptsource import debian_mirror

MMDEBSTRAP_TIMEOUT = 1800


def mmdebstrap(root: Path, release: str, packages: Sequence[str], *,
               options: Sequence[str] = (), timeout: float = MMDEBSTRAP_TIMEOUT) -> None:
    """Bootstrap ``release`` with ``packages`` into ``root`` from the host's apt configuration.

    mmdebstrap runs in a mount namespace of its own, so the /proc, /sys and /dev/pts it mounts
    in the tree vanish with it even when it is killed (timeout, Ctrl-C) before it unmounts; its
    temporary directory is one of ours, removed either way.
    """
    argv: list[str | Path] = ["unshare", "--mount", "--propagation", "private", "--fork",
                              "--kill-child", "--", "mmdebstrap", "--quiet", "--variant=apt",
                              "--mode=root", "--include=" + ",".join(packages), *options,
                              release, root]
    mirror = debian_mirror()
    if mirror:
        argv.append(mirror)
    # mmdebstrap's temporary files (its GnuPG home among them) go to a directory of our own,
    # removed here also when mmdebstrap was killed before it could clean up after itself
    with tempfile.TemporaryDirectory(prefix="dg-mmdebstrap-") as scratch:
        proc.run(argv, timeout=timeout, env={"TMPDIR": scratch})


def installed_packages(root: Path) -> dict[str, str]:
    """The packages installed in the Debian tree at ``root`` (name to version), by its dpkg
    database."""
    result = proc.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W",
                       "-f", "${Package}\\t${Version}\\t${db:Status-Abbrev}\\n"], timeout=60)
    packages = {}
    for line in result.text.splitlines():
        name, version, status = [*line.split("\t"), "", ""][:3]
        if status.startswith("ii"):
            packages[name] = version
    return packages
