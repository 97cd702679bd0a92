"""A lab: where VMs run. Private (own libvirtd in own netns, the default) or external (a URI).

``lab.json`` in the lab directory records what the lab is; ``runs/<id>.lock`` files are held
by the processes using it, so the reaper knows which objects belong to live runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distrogate import paths
from distrogate.errors import InputError, LabError
from distrogate.fsutil import atomic_write_json
from distrogate.lab import daemon, virt
from distrogate.lab.xml import Accel
from distrogate.locking import file_lock
from distrogate.logsteps import step
from distrogate.proc import pid_alive, stop

log = logging.getLogger(__name__)

STATE_FILE = "lab.json"
PREFIX = "dg-"


@dataclass(frozen=True)
class LabState:
    """What ``lab.json`` records."""

    lab_id: str
    kind: str  # "private" or "external"
    uri: str
    netns: str | None
    daemon_pid: int | None
    owner_pid: int | None  # None: started by `lab up`, lives until `lab down`
    created: str


class Lab:
    """A libvirt endpoint plus a directory for overlays, consoles and templates."""

    def __init__(self, directory: Path, state: LabState) -> None:
        self.directory = directory
        self.state = state
        self._conn: virt.Connection | None = None
        self._accel: Accel | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def default_dir(cls) -> Path:
        """The lab that ``distrogate lab up`` starts and later runs reuse."""
        return paths.labs_dir() / "default"

    @classmethod
    def start(cls, directory: Path | None = None, *, persistent: bool = False,
              owner_pid: int | None = None) -> Lab:
        """Start a private lab (or return the one already running in ``directory``).

        ``persistent`` labs outlive this process (``lab up``); others belong to ``owner_pid``
        (default: this process) and are reaped by ``lab gc`` once it is gone.
        """
        lab_id = secrets.token_hex(3)
        directory = directory or paths.labs_dir() / f"run-{lab_id}"
        directory.mkdir(parents=True, exist_ok=True)
        with file_lock(directory / ".lab.lock", timeout=60, what="lab start"):
            existing = cls.load(directory)
            if existing is not None and existing.alive():
                return existing
            if existing is not None:
                existing.teardown()
                directory.mkdir(parents=True, exist_ok=True)
            netns = f"{PREFIX}{lab_id}"
            with step("start private lab %s (netns %s)", directory, netns):
                state = LabState(lab_id=lab_id, kind="private", uri=daemon.uri_for(directory / "libvirt"),
                                 netns=netns, daemon_pid=None,
                                 owner_pid=None if persistent else owner_pid or os.getpid(),
                                 created=datetime.now(UTC).isoformat(timespec="seconds"))
                atomic_write_json(directory / STATE_FILE, asdict(state))
                try:
                    pid = daemon.start_daemon(directory / "libvirt", netns, directory / "libvirtd.log")
                except BaseException:
                    daemon.destroy_netns(netns)
                    raise
                state = LabState(**{**asdict(state), "daemon_pid": pid})
                atomic_write_json(directory / STATE_FILE, asdict(state))
        return cls(directory, state)

    @classmethod
    def external(cls, uri: str, directory: Path | None = None) -> Lab:
        """Use an existing libvirt daemon at ``uri`` (files for its VMs under ``directory``)."""
        try:
            virt.connect(uri).close()
        except virt.LibvirtError as exc:
            raise InputError(f"--libvirt-uri {uri}: cannot connect: {exc}") from None
        lab_id = secrets.token_hex(3)
        directory = directory or paths.labs_dir() / f"ext-{lab_id}"
        directory.mkdir(parents=True, exist_ok=True)
        existing = cls.load(directory)
        if existing is not None and existing.state.uri == uri:
            return existing
        state = LabState(lab_id=lab_id, kind="external", uri=uri, netns=None, daemon_pid=None,
                         owner_pid=os.getpid(), created=datetime.now(UTC).isoformat(timespec="seconds"))
        atomic_write_json(directory / STATE_FILE, asdict(state))
        return cls(directory, state)

    @classmethod
    def load(cls, directory: Path) -> Lab | None:
        """The lab recorded in ``directory``, or None."""
        try:
            raw = json.loads((directory / STATE_FILE).read_text())
            return cls(directory, LabState(**raw))
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def ensure(cls, directory: Path | None = None, uri: str | None = None) -> Lab:
        """The lab a run should use: ``uri``; else ``directory`` (started if need be); else the
        default lab if it is up; else a new private lab owned by this process."""
        if uri:
            return cls.external(uri, directory)
        if directory is not None:
            lab = cls.load(directory)
            return lab if lab is not None and lab.alive() else cls.start(directory)
        default = cls.load(cls.default_dir())
        if default is not None and default.alive():
            return default
        return cls.start()

    @property
    def owned_by_me(self) -> bool:
        """Whether this process started the lab and must stop it."""
        return self.state.owner_pid == os.getpid() and self.state.kind == "private"

    def alive(self) -> bool:
        """Whether the lab's daemon answers."""
        if self.state.kind == "private" and (
                self.state.daemon_pid is None or not pid_alive(self.state.daemon_pid)):
            return False
        return virt.can_connect(self.state.uri)

    def host_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run on the host side of the lab: inside the lab's network namespace
        (where its bridges and the VMs' tap devices are), or as it is for an external lab."""
        return ["ip", "netns", "exec", self.state.netns, *argv] if self.state.netns else argv

    def conn(self) -> virt.Connection:
        """This process's connection to the lab's daemon."""
        if self._conn is None or not self._conn.isAlive():
            try:
                self._conn = virt.connect(self.state.uri)
            except virt.LibvirtError as exc:
                raise LabError(f"lab {self.directory}: cannot connect to libvirt: {exc}") from None
        return self._conn

    def accel(self, kernel: Path | None) -> Accel:
        """KVM or TCG for this lab (probed once with ``kernel``, see ``lab.accel``)."""
        if self._accel is None:
            from distrogate.lab.accel import choose_accel

            if kernel is None:
                self._accel = Accel.TCG
            else:
                self._accel = choose_accel(self.conn(), kernel, self.directory / "probe",
                                           f"{PREFIX}{self.state.lab_id}-")
        return self._accel

    def teardown(self) -> None:
        """Destroy everything of this lab: domains, networks, the daemon, netns and files."""
        with step("tear down lab %s", self.directory):
            if self.state.kind == "private":
                if self.state.netns:
                    daemon.destroy_netns(self.state.netns)
                if self.state.daemon_pid and pid_alive(self.state.daemon_pid):
                    stop([self.state.daemon_pid])
                daemon.remove_socket_link(self.directory / "libvirt")
                shutil.rmtree(self.directory, ignore_errors=True)
            else:
                from distrogate.lab.reaper import reap_objects

                reap_objects(self, only_dead_runs=False)
                shutil.rmtree(self.directory, ignore_errors=True)
        if self._conn is not None:
            with contextlib.suppress(virt.LibvirtError):
                self._conn.close()
            self._conn = None

    def status(self) -> dict[str, Any]:
        """Domains, networks and overlay files of this lab, for ``lab status``."""
        prefix = f"{PREFIX}{self.state.lab_id}-"
        info: dict[str, Any] = {"directory": str(self.directory), **asdict(self.state),
                                "alive": self.alive(), "domains": [], "networks": []}
        if info["alive"]:
            conn = self.conn()
            info["domains"] = sorted(d.name() for d in conn.listAllDomains()
                                     if self.state.kind == "private" or d.name().startswith(prefix))
            info["networks"] = sorted(n.name() for n in conn.listAllNetworks()
                                      if self.state.kind == "private" or n.name().startswith(prefix))
        vms = self.directory / "vms"
        info["overlays"] = sorted(str(p) for p in vms.glob("*/*.qcow2")) if vms.is_dir() else []
        return info

