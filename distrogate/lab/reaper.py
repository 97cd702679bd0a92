"""Remove what killed runs left behind: domains, networks, overlays, daemons, namespaces."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from distrogate import paths, proc
from distrogate.lab import daemon, virt, warm
from distrogate.lab.lab import PREFIX, Lab
from distrogate.locking import is_locked

log = logging.getLogger(__name__)


def live_runs(lab: Lab) -> set[str]:
    """Run ids whose owning process still holds its lock."""
    runs = lab.directory / "runs"
    live = set()
    for lock in runs.glob("*.lock") if runs.is_dir() else []:
        if is_locked(lock):
            live.add(lock.stem.split("-")[0])
        else:
            lock.unlink(missing_ok=True)
    return live


def _owner_alive(lab: Lab, run_part: str, live: set[str]) -> bool:
    if run_part.startswith("tpl"):
        return is_locked(warm.lock_path(run_part[3:]))
    return run_part in live


def reap_objects(lab: Lab, *, only_dead_runs: bool = True) -> list[str]:
    """Destroy the lab's domains and networks (only those of dead runs, by default)."""
    removed: list[str] = []
    prefix = f"{PREFIX}{lab.state.lab_id}-"
    live = live_runs(lab) if only_dead_runs else set()
    conn = lab.conn()
    objects = [("domain", d) for d in conn.listAllDomains()] + \
        [("network", n) for n in conn.listAllNetworks()]
    for kind, obj in objects:
        name = obj.name()
        if name.startswith(prefix) and not (only_dead_runs and _owner_alive(
                lab, name[len(prefix):].split("-")[0], live)):
            try:
                obj.destroy()
                removed.append(f"{kind} {name}")
            except virt.LibvirtError as exc:
                log.warning("cannot destroy %s %s: %s", kind, name, exc)
    vms = lab.directory / "vms"
    for vm_dir in vms.iterdir() if vms.is_dir() else []:
        run_part = vm_dir.name[len(prefix):].split("-")[0] if vm_dir.name.startswith(prefix) else ""
        if not (only_dead_runs and _owner_alive(lab, run_part, live)):
            shutil.rmtree(vm_dir, ignore_errors=True)
            removed.append(f"files {vm_dir}")
    return removed


def _runs_from(netns: str, labs_root: Path) -> bool:
    """Whether a process in ``netns`` was started with a path under ``labs_root``."""
    marker = str(labs_root.resolve()).encode()
    for pid in daemon.netns_pids(netns):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def gc(labs_root: Path | None = None) -> list[str]:
    """Reap every lab under ``labs_root``: whole labs whose owner or daemon died, objects of
    dead runs in live labs, and stray ``dg-`` network namespaces."""
    labs_root = labs_root or paths.labs_dir()
    removed: list[str] = []
    live_netns: set[str] = set()
    for directory in sorted(labs_root.iterdir()) if labs_root.is_dir() else []:
        lab = Lab.load(directory)
        if lab is None:
            if directory.is_dir() and not any(directory.glob("runs/*.lock")):
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(f"stale directory {directory}")
            continue
        owner = lab.state.owner_pid
        owner_dead = owner is not None and not proc.pid_alive(owner)
        if lab.state.kind == "private" and (owner_dead or not lab.alive()):
            lab.teardown()
            removed.append(f"lab {directory} (netns {lab.state.netns})")
            continue
        if lab.state.kind == "external" and owner_dead and not lab.alive():
            shutil.rmtree(directory, ignore_errors=True)
            continue
        if lab.state.netns:
            live_netns.add(lab.state.netns)
        if lab.alive():
            removed += reap_objects(lab)
        if lab.state.kind == "external" and owner_dead:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(f"lab record {directory}")
    for netns in daemon.list_netns(PREFIX):
        # Only namespaces whose processes run out of a lab under *this* labs_root: another
        # $DISTROGATE_HOME's labs (another user, a test's private home) are not ours to reap.
        if netns not in live_netns and _runs_from(netns, labs_root):
            daemon.destroy_netns(netns)
            removed.append(f"netns {netns}")
    removed += [f"socket link {link}" for link in daemon.remove_dangling_socket_links()]
    removed += [f"template {tdir} (its image or QEMU/libvirt changed)" for tdir in warm.prune()]
    for line in removed:
        log.info("gc: removed %s", line)
    return removed
