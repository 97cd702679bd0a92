"""What the unprivileged QEMU user is given: shared files are stated, read-only and never
relabeled; stores under a folder others cannot enter are made reachable in the daemon's
namespace only; the private daemon's qemu.conf."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from distrogate.lab import daemon
from distrogate.lab.template import CloneIdentity, rewrite_for_clone
from distrogate.lab.xml import Accel, DomainSpec, ExtraDisk, Nic, domain_xml

CHAIN = ((Path("/store/tpl/disk.qcow2"), "qcow2"), (Path("/store/img/disk.raw"), "raw"))


def _spec(**fields: object) -> DomainSpec:
    return DomainSpec(name="vm", uuid="00000000-0000-0000-0000-000000000001", accel=Accel.TCG,
                      disk=Path("/lab/vm/disk.qcow2"), console_log=Path("/lab/vm/console.log"),
                      nics=(Nic("net", "52:54:00:00:00:01"),), **fields)  # type: ignore[arg-type]


def _chain(disk: ET.Element) -> list[tuple[str, str, str]]:
    found = []
    store = disk.find("backingStore")
    while store is not None and store.find("source") is not None:
        source = store.find("source")
        fmt = store.find("format")
        label = source.find("seclabel") if source is not None else None
        assert source is not None and fmt is not None and label is not None
        found.append((source.get("file", ""), fmt.get("type", ""), label.get("relabel", "")))
        store = store.find("backingStore")
    assert store is not None and len(store) == 0, "the chain must end with <backingStore/>"
    return found


def test_the_backing_chain_is_stated_and_never_relabeled() -> None:
    root = ET.fromstring(domain_xml(_spec(disk_backing=CHAIN,
                                          extra_disks=(ExtraDisk(Path("/store/seed.img")),))))
    vda, vdb = root.findall("devices/disk")
    assert _chain(vda) == [("/store/tpl/disk.qcow2", "qcow2", "no"),
                           ("/store/img/disk.raw", "raw", "no")]
    label = vdb.find("source/seclabel")
    assert label is not None and label.get("relabel") == "no"  # shared, read-only
    assert vda.find("source/seclabel") is None  # the VM's own overlay: the QEMU user's


def test_a_clone_gets_its_own_chain() -> None:
    saved = domain_xml(_spec(disk_backing=((Path("/store/img/disk.raw"), "raw"),)))
    identity = CloneIdentity(name="clone", uuid="00000000-0000-0000-0000-000000000002",
                             disks={"vda": Path("/lab/clone/disk.qcow2")},
                             nics=(Nic("net2", "52:54:00:00:00:02"),),
                             console_log=Path("/lab/clone/console.log"), backing=CHAIN)
    vda = ET.fromstring(rewrite_for_clone(saved, identity)).find("devices/disk")
    assert vda is not None
    source = vda.find("source")
    assert source is not None and source.get("file") == "/lab/clone/disk.qcow2"
    assert [c[0] for c in _chain(vda)] == [str(p) for p, _ in CHAIN]


def test_stores_under_a_closed_folder_are_made_reachable(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    home = closed / "home"
    (home / "images").mkdir(parents=True)
    closed.chmod(0o700)
    lab = tmp_path / "open-lab"
    lab.mkdir()
    tmp_path.chmod(0o755)
    steps = daemon.guest_view_script(home, lab)
    assert daemon.blocked_ancestor(home) in (closed, *closed.parents)
    script = "\n".join(steps)
    assert f"mount -t tmpfs -o size=1m,mode=0755 dg-reach {daemon.blocked_ancestor(home)}" in script
    assert f"mount --bind /mnt/0 {home}" in script
    assert f"mount -o remount,bind,ro {home / 'images'}" in script


def test_the_private_daemon_runs_qemu_unprivileged_under_seccomp() -> None:
    conf = dict(line.split(" = ", 1) for line in daemon.qemu_conf().splitlines()
                if " = " in line and not line.startswith("#"))
    assert conf["user"] == '"libvirt-qemu"' and conf["group"] == '"kvm"'
    assert conf["dynamic_ownership"] == "1"
    assert conf["seccomp_sandbox"] == ("1" if daemon.seccomp_supported() else "0")
    assert daemon.seccomp_supported()  # Debian's QEMU has it
    assert not daemon.seccomp_supported("/bin/false")
