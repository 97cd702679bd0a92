"""A pytest-testinfra backend over the guest agent: ``host.package("libc6")`` on a VM.

Thin by design (as testinfra's own backends are): one ``run`` that hands the command to
``Machine.execute``.
"""

from __future__ import annotations

from typing import Any

import testinfra.host
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
