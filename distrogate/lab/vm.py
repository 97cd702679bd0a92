"""One VM: a transient libvirt domain on its own qcow2 overlay, with console capture."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from distrogate import paths, proc
from distrogate.errors import LabError
from distrogate.guest.agent import LibvirtAgent
from distrogate.lab import virt
from distrogate.lab.console import ConsoleWatch, keep
from distrogate.lab.xml import DomainSpec, domain_xml

log = logging.getLogger(__name__)


def make_overlay(backing: Path, backing_format: str, overlay: Path) -> None:
    """Create a qcow2 overlay on ``backing``; the backing file is only ever read."""
    proc.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", backing_format,
              overlay], timeout=60)


class VM:
    """A running (or stopped) VM of the lab. Implements the Machine's ``GuestHandle``."""

    def __init__(self, conn: virt.Connection, spec: DomainSpec, directory: Path) -> None:
        self.conn = conn
        self.spec = spec
        self.name = spec.name
        self.directory = directory
        self.console_log = spec.console_log
        self._watch = ConsoleWatch(spec.console_log)
        self._domain: virt.Domain | None = None

    def attach(self, domain: virt.Domain) -> None:
        """Adopt a domain started elsewhere (a template restore)."""
        self._domain = domain

    def power_on(self) -> None:
        """Start the domain cold from its overlay."""
        self._watch.reset()
        try:
            self._domain = virt.create(self.conn, domain_xml(self.spec))
        except virt.LibvirtError as exc:
            raise LabError(f"{self.name}: libvirt could not start the VM: {exc}") from None

    def agent(self) -> LibvirtAgent:
        """The guest agent of the running domain."""
        if self._domain is None:
            raise LabError(f"{self.name}: not started")
        return LibvirtAgent(self._domain, self.name, crashed=self._crashed)

    def _crashed(self) -> str | None:
        """The fatal console message of this boot, if there is one, with where a copy of the
        console log is kept (the VM's own goes with the VM)."""
        fatal = self._watch.fatal()
        if fatal is None:
            return None
        kept = keep(self.console_log, paths.home(), self.name)
        return f"{fatal}; console log: {kept}" if kept else fatal

    def is_running(self) -> bool:
        """Whether the domain exists and runs."""
        if self._domain is None:
            return False
        try:
            return bool(self._domain.isActive())
        except virt.LibvirtError:
            return False

    def power_off_hard(self) -> None:
        """Destroy the domain (power cut); the overlay stays."""
        if self._domain is not None and self.is_running():
            try:
                self._domain.destroy()
            except virt.LibvirtError as exc:
                if self.is_running():
                    raise LabError(f"{self.name}: cannot stop: {exc}") from None
        self._domain = None

    def pause(self, timeout: float = 30.0) -> None:
        """Stop the domain's virtual CPUs (memory and devices stay); :meth:`resume` continues
        it. A paused VM takes no host CPU: what a measurement on another VM wants."""
        self._domain_call("suspend", timeout)

    def resume(self, timeout: float = 30.0) -> None:
        """Continue a domain that :meth:`pause` stopped."""
        self._domain_call("resume", timeout)

    def _domain_call(self, what: str, timeout: float) -> None:
        domain = self._domain
        if domain is None:
            raise LabError(f"{self.name}: not started")
        try:
            virt.bounded(f"{what} of {self.name}", timeout, getattr(domain, what))
        except virt.LibvirtError as exc:
            raise LabError(f"{self.name}: libvirt could not {what} the VM: {exc}") from None

    def new_boot(self) -> None:
        """Tell the console watch a new boot starts (a reboot from inside the guest)."""
        self._watch.reset()

    def boot_problem(self) -> str | None:
        """A reason from the console log why the guest cannot come up, or None."""
        return self._watch.problem()

    def remove(self, *, keep: bool = False) -> None:
        """Stop the VM and delete its overlay and files (unless ``keep``)."""
        if keep:
            log.warning("keeping VM %s (files in %s)", self.name, self.directory)
            return
        self.power_off_hard()
        shutil.rmtree(self.directory, ignore_errors=True)
