"""A pytest-testinfra backend over the guest agent: ``host.package("libc6")`` on a VM.

Thin by design (as testinfra's own backends are): one ``run`` that hands the command to
``Machine.execute``.
"""

from __future__ import annotations

from typing import Any

import testinfra.host
from testinfra import backend
from testinfra.backend import base

from distrogate.guest.machine import Machine


class AgentBackend(base.BaseBackend):  # type: ignore[misc]
    """Runs testinfra's commands through the QEMU guest agent of a :class:`Machine`."""

    NAME = "distrogate-agent"

    def __init__(self, machine: Machine, **kwargs: Any) -> None:
        super().__init__(machine.name, **kwargs)
        self.machine = machine

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        """Run ``command`` (with testinfra's quoting of ``args``) in the guest."""
        cmd = self.get_command(command, *args)
        result = self.machine.execute(cmd)
        return self.result(result.exit_code, self.encode(cmd), result.stdout, result.stderr)


def agent_host(machine: Machine) -> testinfra.host.Host:
    """A testinfra ``Host`` whose modules run on ``machine``."""
    return testinfra.host.Host(AgentBackend(machine))


class RoleBackend(AgentBackend):
    """testinfra's backend for an image under test, named by its role (``baseline`` or
    ``candidate``) and bound later to the machine booted for it.

    testinfra builds its hosts while collecting, long before any VM boots; the harness binds
    each host to the module's booted machine when the ``host`` fixture is set up (see
    ``fixtures/testinfra_hosts.py``). The hostspec is ``distrogate://baseline``; the test id is
    the role alone (``test_x[baseline]``). The agent runs commands as root, so testinfra's
    ``sudo`` needs no sudo in the image: ``sudo_user`` runs the command through ``runuser``.
    """

    NAME = "distrogate"

    def __init__(self, hostname: str, *args: Any, **kwargs: Any) -> None:
        base.BaseBackend.__init__(self, hostname, kwargs.get("sudo", False),
                                  kwargs.get("sudo_user"))
        self._machine: Machine | None = None

    @property
    def machine(self) -> Machine:
        """The booted machine of this role; an error (not a test failure) while unbound."""
        if self._machine is None:
            raise RuntimeError(
                f"testinfra host {self.hostname!r} is not bound to a booted machine: only the "
                "`host` fixture of a distrogate run (or `candidate_host`/`baseline_host`) "
                "reaches the images")
        return self._machine

    @machine.setter
    def machine(self, machine: Machine | None) -> None:
        self._machine = machine

    def bind(self, machine: Machine | None) -> None:
        """Run this host's commands on ``machine`` from now on (``None``: on nothing)."""
        self._machine = machine

    def get_pytest_id(self) -> str:
        """The role: ``test_x[baseline]``, ``test_x[candidate]``."""
        return str(self.hostname)

    def get_sudo_command(self, command: str, sudo_user: str | None) -> str:
        """The command as ``sudo_user`` (through ``runuser``); as is for root."""
        if sudo_user is None or sudo_user == "root":
            return command
        return str(self.quote("runuser -u %s -- /bin/sh -c %s", sudo_user, command))


def register_role_backend() -> None:
    """Make ``distrogate://ROLE`` a testinfra hostspec (idempotent)."""
    backend.BACKENDS[RoleBackend.NAME] = f"{__name__}.{RoleBackend.__name__}"
