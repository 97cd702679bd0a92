"""A private libvirtd in a network namespace of its own, with all its state in the lab dir.

The daemon runs under ``ip netns exec`` (bridges and guests live in that namespace, with no
route to the host) inside a private mount namespace where libvirt's run, state, cache, log
and config directories are bind mounts of the lab directory. A libvirtd of the host, if any,
is left alone. Clients reach the daemon through the socket in the lab directory.
"""

from __future__ import annotations

import functools
import grp
import hashlib
import logging
import os
import shlex
import stat as _stat
import time
from pathlib import Path

from distrogate import paths, proc
from distrogate.errors import LabError
from distrogate.lab import virt

log = logging.getLogger(__name__)

SOCKET_LINKS = Path("/run/distrogate")
START_TIMEOUT = 90.0  # ~0.1 s idle; generous for a host saturated by TCG guests
LIBVIRT_DIRS = {"run": "/run/libvirt", "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
                "log": "/var/log/libvirt", "etc": "/etc/libvirt"}
QEMU_USER = "libvirt-qemu"
QEMU_GROUP = "kvm"  # the QEMU user's own primary group, which owns /dev/kvm for the daemon
KVM_DEVICE = Path("/dev/kvm")
QEMU_BINARY = "/usr/bin/qemu-system-x86_64"
QEMU_CONF = """\
# written by distrogate: guests run as an unprivileged user under libvirt's DAC driver (always
# on; no MAC driver), which gives each VM's own files (overlay, console log, NVRAM, data disks)
# to that user while it runs; files shared between VMs are read-only (never relabeled, see
# lab.xml) and the image stores are mounted read-only for the daemon. QEMU runs in its seccomp
# sandbox where it has one. No virtlogd.
stdio_handler = "file"
security_driver = "none"
user = "{user}"
group = "{group}"
dynamic_ownership = 1
remember_owner = 0
seccomp_sandbox = {seccomp}
cgroup_controllers = [ ]
"""


@functools.cache
def seccomp_supported(qemu: str = QEMU_BINARY) -> bool:
    """Whether this QEMU has its seccomp sandbox (``-sandbox on`` parses; built without
    libseccomp it is refused)."""
    result = proc.run([qemu, "-sandbox", "on", "-version"], timeout=30, check=False)
    return result.returncode == 0


def qemu_conf() -> str:
    """The private daemon's ``qemu.conf``."""
    return QEMU_CONF.format(user=QEMU_USER, group=QEMU_GROUP,
                            seccomp=int(seccomp_supported()))


#: Stores whose files VMs share read-only: mounted read-only in the daemon's namespace, so
#: neither a relabel by libvirt nor a QEMU that escaped its guest can change them.
READ_ONLY_STORES = ("images", "nspawn")
#: Everything QEMU opens lives under these (besides the read-only stores).
SHARED_STORES = ("templates", "labs")
LIBVIRTD_CONF = """\
# written by distrogate: a private daemon reachable only through the lab directory's socket
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
log_outputs = "3:stderr"
"""

def socket_path(base: Path) -> Path:
    """The daemon's read-write socket inside the lab's libvirt directory."""
    return base / "run" / "libvirt-sock"


def socket_link(base: Path) -> Path:
    """A short path for the daemon's socket.

    A unix socket's path must fit in 107 bytes, and lab directories under a long
    $DISTROGATE_HOME (a pytest tmp_path, say) do not; clients connect through this symlink.
    """
    digest = hashlib.sha256(str(base.absolute()).encode()).hexdigest()[:16]
    return SOCKET_LINKS / f"{digest}.sock"


def uri_for(base: Path) -> str:
    """The libvirt URI of the private daemon whose state lives under ``base``."""
    return f"qemu+unix:///system?socket={socket_link(base)}"


def _link_socket(base: Path) -> None:
    link = socket_link(base)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(socket_path(base))
    os.replace(tmp, link)


def remove_socket_link(base: Path) -> None:
    """Remove the short socket path of the daemon under ``base`` (teardown)."""
    socket_link(base).unlink(missing_ok=True)


def remove_dangling_socket_links() -> list[Path]:
    """Remove short socket paths whose lab directory is gone; return them."""
    removed = []
    for link in SOCKET_LINKS.glob("*.sock") if SOCKET_LINKS.is_dir() else []:
        if link.is_symlink() and not link.exists():
            link.unlink(missing_ok=True)
            removed.append(link)
    return removed


def start_daemon(base: Path, netns: str, log_file: Path) -> int:
    """Create ``netns`` and start libvirtd in it with state under ``base``; return its pid."""
    sources = {sub: base / sub for sub in LIBVIRT_DIRS}
    # QEMU's capabilities, probed on the first connection (~8 s under TCG load), are cached
    # across labs: libvirt revalidates the cache against the QEMU binary and its own version.
    sources["cache"] = paths.home() / "libvirt-cache"
    for source in sources.values():
        source.mkdir(parents=True, exist_ok=True)
    (base / "etc" / "qemu.conf").write_text(qemu_conf())
    (base / "etc" / "libvirtd.conf").write_text(LIBVIRTD_CONF)
    for target in LIBVIRT_DIRS.values():
        Path(target).mkdir(parents=True, exist_ok=True)
    proc.run(["ip", "netns", "add", netns], timeout=30)
    proc.run(["ip", "-n", netns, "link", "set", "lo", "up"], timeout=30)
    # libvirt's own folders first: their sources may lie where the guests' view hides
    mounts = " && ".join([*(f"mount --bind {shlex.quote(str(sources[sub].resolve()))} {target}"
                            for sub, target in LIBVIRT_DIRS.items()),
                          *guest_view_script(paths.home(), base.parent)])
    pid_file = base / "libvirtd.pid"
    script = f"{mounts} && exec libvirtd --pid-file {shlex.quote(str(pid_file))}"
    daemon = proc.spawn(["ip", "netns", "exec", netns, "unshare", "--mount",
                         "--propagation", "private", "sh", "-c", script], log_file=log_file)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise LabError(f"libvirtd in {netns} exited with {daemon.returncode}: "
                           f"{_tail(log_file)} (log: {log_file})")
        if socket_path(base).exists():
            _link_socket(base)
            if virt.can_connect(uri_for(base)):
                log.info("private libvirtd %d up in netns %s", daemon.pid, netns)
                return daemon.pid
        time.sleep(0.1)
    proc.stop([daemon.pid])
    raise LabError(f"libvirtd in {netns} did not answer within {START_TIMEOUT:g}s: "
                   f"{_tail(log_file)} (log: {log_file})")


def blocked_ancestor(path: Path) -> Path | None:
    """The topmost folder above ``path`` that other users cannot enter (``/root``, a pytest
    base folder), or None."""
    for ancestor in reversed(path.parents):
        if ancestor != Path("/") and not ancestor.stat().st_mode & 0o001:
            return ancestor
    return None


def guest_view_script(home: Path, lab_dir: Path) -> list[str]:
    """Shell steps, run in the daemon's private mount namespace, that make distrogate's
    stores and the lab directory reachable for the unprivileged QEMU user, and the shared
    stores read-only.

    A store under a folder others cannot enter (``/root/.cache/distrogate``) is bind-mounted
    again below a small tmpfs laid over that folder, in this namespace only: QEMU reaches the
    stores and nothing else that folder holds.
    """
    roots = sorted({(home / sub).resolve() for sub in (*READ_ONLY_STORES, *SHARED_STORES)}
                   | {home.resolve(), lab_dir.resolve()})
    roots = [r for r in roots if not any(r != o and r.is_relative_to(o) for o in roots)]
    moved = [(r, b) for r in roots if (b := blocked_ancestor(r)) is not None]
    steps: list[str] = []
    if moved:
        steps.append("mount -t tmpfs -o size=1m,mode=0700 dg-stage /mnt")
        for index, (root, _) in enumerate(moved):
            steps += [f"mkdir /mnt/{index}", f"mount --bind {shlex.quote(str(root))} /mnt/{index}"]
        for blocked in sorted({b for _, b in moved}):
            steps.append(f"mount -t tmpfs -o size=1m,mode=0755 dg-reach {shlex.quote(str(blocked))}")
        for index, (root, _) in enumerate(moved):
            quoted = shlex.quote(str(root))
            steps += [f"mkdir -p {quoted}", f"mount --bind /mnt/{index} {quoted}"]
        steps.append("umount -R /mnt")
    if KVM_DEVICE.exists():
        steps += kvm_device_script()
    for sub in READ_ONLY_STORES:
        store = (home / sub).resolve()
        if store.is_dir():
            quoted = shlex.quote(str(store))
            steps += [f"mount --bind {quoted} {quoted}", f"mount -o remount,bind,ro {quoted}"]
    return steps


def kvm_device_script() -> list[str]:
    """Shell steps giving the daemon's namespace a /dev/kvm node of the same device that the
    QEMU group may open (``root:kvm 0660``, as udev sets it on a Debian host).

    libvirt judges its cached QEMU capabilities by whether the QEMU user can open /dev/kvm;
    where the host's node is ``root:root 0600`` (no udev), the QEMU user cannot, the cache is
    judged stale on every lookup, and each domain start re-probes QEMU (a minute under TCG).
    The node is made once in ``$DISTROGATE_HOME/dev`` and bind-mounted into every lab: libvirt
    also compares the node's ctime with its cache, and a node made afresh per lab would make
    every new lab probe QEMU again (3-8 s on its first VM).
    """
    return [f"mount --bind {shlex.quote(str(persistent_kvm_node()))} {KVM_DEVICE}"]


def persistent_kvm_node() -> Path:
    """``$DISTROGATE_HOME/dev/kvm``: a ``root:kvm 0660`` node of the host's /dev/kvm device,
    made once (again only if the device number changed)."""
    stat = KVM_DEVICE.stat()
    node = paths.home() / "dev" / "kvm"
    try:
        have = node.stat()
        if have.st_rdev == stat.st_rdev and have.st_mode & 0o777 == 0o660:
            return node
    except OSError:
        pass
    node.parent.mkdir(parents=True, exist_ok=True)
    temporary = node.with_name(f".kvm.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    os.mknod(temporary, 0o660 | _stat.S_IFCHR, stat.st_rdev)
    os.chmod(temporary, 0o660)
    os.chown(temporary, 0, grp.getgrnam(QEMU_GROUP).gr_gid)
    os.replace(temporary, node)
    return node


def netns_pids(netns: str) -> list[int]:
    """Every process inside ``netns`` (libvirtd, QEMU, helpers)."""
    result = proc.run(["ip", "netns", "pids", netns], timeout=30, check=False)
    return [int(p) for p in result.text.split() if p.isdigit()]


def netns_exists(netns: str) -> bool:
    """Whether the named network namespace exists."""
    return Path("/run/netns", netns).exists()


def list_netns(prefix: str) -> list[str]:
    """Network namespaces whose names start with ``prefix``."""
    directory = Path("/run/netns")
    return sorted(p.name for p in directory.glob(prefix + "*")) if directory.is_dir() else []


def destroy_netns(netns: str) -> None:
    """Stop every process in ``netns`` and delete it."""
    if not netns_exists(netns):
        return
    pids = netns_pids(netns)
    if pids:
        proc.stop(pids)
    proc.run(["ip", "netns", "del", netns], timeout=30, check=False)


def _tail(path: Path, limit: int = 300) -> str:
    try:
        text = " ".join(path.read_text(errors="replace").split())
    except OSError:
        return "no log"
    return text[-limit:] or "no output"
