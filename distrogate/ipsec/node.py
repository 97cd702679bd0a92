"""One IPsec node: a machine and its IKE implementation, with the verbs the suite needs
(configure, load, initiate, restart, kernel state, logs). Every verb is bounded and returns
what it saw instead of raising for an image fault, so that a failing step is an observation.
"""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass

from distrogate.errors import GuestCommandTimeout
from distrogate.guest.machine import Machine
from distrogate.ipsec import parse
from distrogate.ipsec.config import (
    NDP_UNIT,
    NDP_UNIT_PATH,
    SWANCTL_DIR,
    Connection,
    files_for,
    start_timeout_dropin,
)
from distrogate.ipsec.detect import LIBRESWAN, PROBE, STRONGSWAN, Implementation, parse_probe
from distrogate.ipsec.pki import NodeCert

log = logging.getLogger(__name__)

LOG_LINES = 60  # IKE daemon log lines a finding shows per side
#: Bound on starting or restarting the IKE daemon: libreswan's ipsec.service (NSS database
#: checks, the stack manager) took over 90 s under TCG on a loaded 2-core host (make test, two
#: workers), where it takes a few seconds on an idle one; a slow lab must not read as a daemon
#: that does not load
DAEMON_START_SECONDS = 300


@dataclass
class Ran:
    """What a command did: passed, its output (stdout and stderr), seconds it took."""

    ok: bool
    output: str
    seconds: float
    timed_out: bool = False  # killed at its bound (the output says so)


class IkeNode:
    """A machine with its IKE implementation (None: the image has none)."""

    def __init__(self, machine: Machine, impl: Implementation | None) -> None:
        self.machine = machine
        self.impl = impl
        self.since = 0.0  # guest epoch seconds at which the current step began
        # the NDP bypass unit and the daemon's drop-in are written, enabled and read by
        # systemd (they survive a reboot); False: the next load sets them up
        self.units_ready = False

    @classmethod
    def detect(cls, machine: Machine, wanted: str = "auto") -> IkeNode:
        """Probe ``machine`` for its IKE implementation (``wanted``: auto, strongswan,
        libreswan)."""
        result = machine.execute(PROBE, timeout=60)
        impl = parse_probe(result.stdout_text, wanted)
        log.info("%s: IKE implementation %s", machine.name, impl.describe() if impl else "none")
        return cls(machine, impl)

    @property
    def name(self) -> str:
        """The machine's name."""
        return self.machine.name

    def run(self, command: str, *, timeout: float = 60) -> Ran:
        """Run ``command``; running out of ``timeout`` is a failed :class:`Ran`, not a raise."""
        started = time.monotonic()
        try:
            result = self.machine.execute(command, timeout=timeout)
        except GuestCommandTimeout as exc:
            return Ran(False, str(exc), time.monotonic() - started, timed_out=True)
        return Ran(result.exit_code == 0, (result.stdout_text + result.stderr_text).strip(),
                   time.monotonic() - started)

    def wait(self, command: str, *, timeout: float, interval: float = 0.5) -> Ran:
        """Run ``command`` until it passes or ``timeout`` seconds pass (bounded)."""
        started = time.monotonic()
        deadline = started + timeout
        last = Ran(False, "never ran", 0.0)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Ran(False, last.output, time.monotonic() - started)
            last = self.run(command, timeout=max(1.0, min(remaining, 30.0)))
            if last.ok:
                return Ran(True, last.output, time.monotonic() - started)
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    def mark(self) -> None:
        """Remember the guest's clock: :meth:`logs` shows the daemon's lines from here on."""
        out = self.run("date +%s", timeout=30).output.strip()
        self.since = float(out) if out.isdigit() else 0.0

    # -- configuration ------------------------------------------------------------------

    def install(self, conns: list[Connection], cert: NodeCert | None = None) -> Ran:
        """Write the configuration files for ``conns`` (and the node's certificate, key and
        the CA for x509) into the guest."""
        if self.impl is None:
            return Ran(False, "no IKE implementation in the image", 0.0)
        started = time.monotonic()
        files = files_for(self.impl.kind, conns)
        if self.units_ready:  # the units are in place and loaded: only the IKE configuration
            files.pop(NDP_UNIT_PATH, None)
        else:
            dropin, timeout_text = start_timeout_dropin(self.impl.unit, DAEMON_START_SECONDS)
            self.machine.succeed(["mkdir", "-p", dropin.rsplit("/", 1)[0]], timeout=30)
            files[dropin] = timeout_text
        for path, text in files.items():
            self.machine.write_file(path, text.encode(),
                                    mode=0o644 if path.startswith("/etc/systemd/") else 0o600,
                                    timeout=60)
        if cert is not None:
            for sub, local in (("x509", cert.cert), ("private", cert.key), ("x509ca", cert.ca)):
                self.machine.write_file(f"{SWANCTL_DIR}/{sub}/{local.name}", local.read_bytes(),
                                        mode=0o600, timeout=60)
        return Ran(True, "", time.monotonic() - started)

    def load(self) -> Ran:
        """Load the configuration into the running daemon (strongSwan: ``swanctl --load-all``;
        libreswan: restart ``ipsec.service``, which reads ``/etc/ipsec.d``). The first load
        also reloads systemd (the unit's start-timeout drop-in) and enables and starts the NDP
        bypass unit; a later one (the rekey step's configuration) only loads."""
        if self.impl is None:
            return Ran(False, "no IKE implementation in the image", 0.0)
        unit = shlex.quote(self.impl.unit)
        if self.impl.kind == STRONGSWAN:
            return self.run_with_units(f"(systemctl is-active -q {unit} || systemctl start "
                                       f"{unit}) && swanctl --load-all --noprompt")
        return self.run_with_units(f"systemctl restart {unit} && ipsec whack --listen "
                                   ">/dev/null && ipsec whack --status | grep -q '\"dg-'")

    def run_with_units(self, command: str) -> Ran:
        """Run ``command`` (which starts or loads the daemon) after :meth:`unit_setup`, within
        the daemon's start bound; once it passes, later calls leave systemd alone."""
        ran = self.run(f"{self.unit_setup()}{command}", timeout=DAEMON_START_SECONDS)
        self.units_ready = self.units_ready or ran.ok
        return ran

    def unit_setup(self) -> str:
        """Shell commands, each followed by ``&&``, that enable and start the NDP bypass unit
        and make systemd read the units :meth:`install` wrote (the daemon's start-timeout
        drop-in): what a first load runs before the daemon; empty once a load did it. One
        reload, after the enable's links exist: ``enable`` reloads systemd too unless told
        not to, and a reload takes ~3 s on an idle TCG guest, five times that beside the
        other pairs' guests."""
        if self.units_ready:
            return ""
        return (f"systemctl enable -q --no-reload {NDP_UNIT} && systemctl daemon-reload && "
                f"systemctl restart {NDP_UNIT} && ")

    def initiate(self, conn: str, timeout: float) -> Ran:
        """Bring ``conn`` up from this side, within ``timeout`` seconds (libreswan through
        ``ipsec whack``, which 4.x and 5.x share: ``ipsec auto`` is deprecated in 5.0)."""
        if self.impl is None:
            return Ran(False, "no IKE implementation in the image", 0.0)
        if self.impl.kind == STRONGSWAN:
            # swanctl's plugin-loader warnings (libstrongswan's optional plugins) say nothing
            # about the connection: a finding shows what the daemon answered
            ran = self.run(f"swanctl --initiate --child {shlex.quote(conn)} "
                           f"--timeout {int(timeout)}", timeout=timeout + 15)
            said = [line for line in ran.output.splitlines() if "plugin" not in line]
            return Ran(ran.ok, "\n".join(said), ran.seconds)
        return self.run(f"timeout {int(timeout)} ipsec whack --name {shlex.quote(conn)} "
                        "--initiate", timeout=timeout + 15)

    def terminate(self, conn: str) -> Ran:
        """Take ``conn``'s IKE_SA down from this side."""
        if self.impl is None:
            return Ran(False, "no IKE implementation in the image", 0.0)
        if self.impl.kind == STRONGSWAN:
            return self.run(f"swanctl --terminate --ike {shlex.quote(conn)} --timeout 20",
                            timeout=40)
        return self.run(f"ipsec whack --name {shlex.quote(conn)} --terminate", timeout=40)

    def restart(self) -> Ran:
        """Restart the IKE daemon's unit (strongSwan's unit loads the configuration again on
        start: ``ExecStartPost=swanctl --load-all``)."""
        if self.impl is None:
            return Ran(False, "no IKE implementation in the image", 0.0)
        return self.run(f"systemctl restart {shlex.quote(self.impl.unit)}",
                        timeout=DAEMON_START_SECONDS)

    # -- state ---------------------------------------------------------------------------

    def xfrm_states(self) -> list[parse.XfrmState]:
        """The kernel's SAs (with counters)."""
        return parse.xfrm_states(self.run("ip -s xfrm state", timeout=30).output)

    def sa_count(self, local: str, remote: str) -> int:
        """ESP SAs in the kernel between ``local`` and ``remote`` in both directions (pairs
        counted once; larval acquire states, SPI 0, left out)."""
        states = [s for s in self.xfrm_states() if s.proto == "esp" and s.live]
        out = sum(1 for s in states if s.src == local and s.dst == remote)
        back = sum(1 for s in states if s.src == remote and s.dst == local)
        return min(out, back)

    def negotiated(self, conn: str) -> str:
        """What was negotiated for ``conn``: the IKE and ESP proposals strongSwan lists, or
        (any implementation) the algorithms of the kernel's ESP SAs."""
        if self.impl is not None and self.impl.kind == STRONGSWAN:
            sas = [sa for sa in parse.list_sas(self.run("swanctl --list-sas", timeout=30).output)
                   if sa.name == conn and sa.state == "ESTABLISHED"]
            child = parse.established(sas, conn)
            if sas and child is not None:
                return f"IKE {sas[-1].proposal or '?'}, ESP {child.proposal}"
        algorithms = sorted({" ".join(s.algorithms) for s in self.xfrm_states()
                             if s.proto == "esp" and s.live})
        return "ESP " + ("; ".join(algorithms) or "?")

    def evidence(self) -> dict[str, str]:
        """What a finding shows of this side: the IKE daemon's log lines since :meth:`mark`,
        ``ip xfrm state`` (keys left out) and ``ip xfrm policy``, and the SAs the daemon lists."""
        unit = shlex.quote(self.impl.unit) if self.impl else "ipsec.service"
        since = f"--since=@{int(self.since)}" if self.since else "-b"
        logs = self.run(f"journalctl -u {unit} -u {NDP_UNIT} {since} --no-pager "
                        f"-o short-precise | tail -n {LOG_LINES}", timeout=30).output
        states = self.run("ip -s xfrm state | sed -E 's/0x[0-9a-f]{32,}/<key>/'",
                          timeout=30).output
        policies = self.run("ip xfrm policy", timeout=30).output
        sas = ""
        if self.impl is not None and self.impl.kind == STRONGSWAN:
            sas = self.run("swanctl --list-sas", timeout=30).output
        elif self.impl is not None and self.impl.kind == LIBRESWAN:
            sas = self.run("ipsec whack --trafficstatus", timeout=30).output
        return {"node": self.name, "implementation": self.impl.describe() if self.impl else "none",
                "ike_log": logs, "xfrm_state": states, "xfrm_policy": policies, "sas": sas}
