"""Faults on one node's link, applied from the host side inside the lab's network namespace.

The image under test is never touched: every fault acts on the host end of the node's
interface (its tap device on the lab bridge).

- ``down`` / ``up``: the tap goes down, so no frame passes either way (a cable pulled);
- ``loss(percent)``: each frame to and from the node is dropped with that probability
  (an nftables bridge rule with ``numgen random``);
- ``delay(ms)``: every frame *to* the node is held for ``ms`` (``tc netem`` where the host
  kernel has it, else a frame relay, :mod:`distrogate.lab.impair`), so round trips to the
  node grow by ``ms``;
- ``reset()``: TCP to and from the node is answered with resets (nftables ``reject with tcp
  reset`` on the ingress of the node's tap and of its peers' taps on that network), so its
  connections break at both ends.

``clear()`` undoes them all; a :class:`Link` used with ``with`` clears when the block ends.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import TracebackType

from distrogate import proc
from distrogate.errors import GuestTimeout, LabError
from distrogate.lab import impair
from distrogate.lab.lab import Lab
from distrogate.lab.network import LabNetwork
from distrogate.lab.vm import VM
from distrogate.retry import retry_until

log = logging.getLogger(__name__)

TIMEOUT = 30.0
RELAY_READY_SECONDS = 30.0  # the delay relay (a Python process) opening its sockets


class Link:
    """The host side of one interface of one node."""

    def __init__(self, lab: Lab, vm: VM, index: int, network: LabNetwork, *, label: str) -> None:
        self.lab = lab
        self.vm = vm
        self.index = index
        self.network = network
        self.label = label
        self._tap: str | None = None
        self._relay: subprocess.Popen[bytes] | None = None
        self._spliced = False  # the tap is off its bridge, a veth pair in its place
        self._netem = False

    def __enter__(self) -> Link:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.clear()

    # -- the device ----------------------------------------------------------------------------
    @property
    def tap(self) -> str:
        """The name of the node's tap device in the lab namespace."""
        if self._tap is None:
            mac = self.vm.spec.nics[self.index].mac
            domain = self.lab.conn().lookupByName(self.vm.name)
            root = ET.fromstring(domain.XMLDesc(0))
            for iface in root.iterfind("devices/interface"):
                found = iface.find("mac")
                target = iface.find("target")
                if found is not None and found.get("address") == mac and target is not None:
                    self._tap = target.get("dev")
            if not self._tap:
                raise LabError(f"{self.label}: no tap device for MAC {mac} in {self.vm.name}")
        return self._tap

    def _host(self, *argv: str, check: bool = True, stdin: str | None = None) -> str:
        result = proc.run(self.lab.host_argv(list(argv)), timeout=TIMEOUT, check=check,
                          input=stdin.encode() if stdin is not None else None)
        return result.text

    @property
    def _table(self) -> str:
        return "dg_" + hashlib.sha256(self.tap.encode()).hexdigest()[:8]

    # -- faults --------------------------------------------------------------------------------
    def down(self) -> Link:
        """Take the link down: nothing passes either way."""
        log.info("link %s (%s): down", self.label, self.tap)
        self._host("ip", "link", "set", "dev", self.tap, "down")
        return self

    def up(self) -> Link:
        """Bring the link up again."""
        log.info("link %s (%s): up", self.label, self.tap)
        self._host("ip", "link", "set", "dev", self.tap, "up")
        return self

    def loss(self, percent: int) -> Link:
        """Drop each frame to and from the node with probability ``percent`` %."""
        if not 0 < percent <= 100:
            raise LabError(f"{self.label}: loss must be 1..100 %, got {percent}")
        log.info("link %s (%s): %d %% loss", self.label, self.tap, percent)
        tap, table = self.tap, self._table
        self._nft(f"""table bridge {table} {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "{tap}" numgen random mod 100 < {percent} drop
    oifname "{tap}" numgen random mod 100 < {percent} drop
  }}
}}""")
        return self

    def reset(self) -> Link:
        """Answer TCP to and from the node with resets: segments the node sends are answered
        by a reset to the node; segments the other machines on the network send to the node
        are answered by a reset to them. Both ends see their connections reset."""
        log.info("link %s (%s): TCP reset", self.label, self.tap)
        mac = self.vm.spec.nics[self.index].mac
        chains = [self._reset_chain("node", self.tap, "")]
        chains += [self._reset_chain(f"peer{i}", port, f'ether daddr {mac} ')
                   for i, port in enumerate(self._bridge_ports()) if port != self.tap]
        self._nft(f"table netdev {self._table}r {{\n" + "".join(chains) + "}\n")
        return self

    @staticmethod
    def _reset_chain(name: str, device: str, match: str) -> str:
        return (f"  chain {name} {{\n"
                f'    type filter hook ingress device "{device}" priority 0; policy accept;\n'
                f"    {match}meta l4proto tcp reject with tcp reset\n"
                "  }\n")

    def _bridge_ports(self) -> list[str]:
        said = self._host("ip", "-o", "link", "show", "master", self.network.bridge)
        return [line.split(":")[1].strip().split("@")[0] for line in said.splitlines()
                if line.count(":") >= 2]

    def delay(self, ms: int) -> Link:
        """Hold every frame to the node for ``ms`` milliseconds."""
        if not 0 < ms <= 60_000:
            raise LabError(f"{self.label}: delay must be 1..60000 ms, got {ms}")
        log.info("link %s (%s): %d ms delay", self.label, self.tap, ms)
        added = proc.run(self.lab.host_argv(["tc", "qdisc", "replace", "dev", self.tap, "root",
                                             "netem", "delay", f"{ms}ms"]),
                         timeout=TIMEOUT, check=False)
        if added.returncode == 0:
            self._netem = True
            return self
        log.info("no sch_netem in this kernel (%s); delaying through a frame relay",
                 added.text.strip()[:80])
        self._start_relay(ms)
        return self

    def clear(self) -> None:
        """Undo every fault on this link (idempotent)."""
        if self._tap is None:
            return
        self._stop_relay()
        if self._netem:
            self._host("tc", "qdisc", "del", "dev", self.tap, "root", check=False)
            self._netem = False
        for family, table in (("bridge", self._table), ("netdev", self._table + "r")):
            self._host("nft", "delete", "table", family, table, check=False)
        self._host("ip", "link", "set", "dev", self.tap, "up", check=False)

    # -- helpers -------------------------------------------------------------------------------
    def _nft(self, ruleset: str) -> None:
        self._host("nft", "-f", "-", stdin=ruleset)

    def _port_names(self) -> tuple[str, str]:
        digest = hashlib.sha256(self.tap.encode()).hexdigest()[:8]
        return f"dgi{digest}", f"dgj{digest}"

    def _start_relay(self, ms: int) -> None:
        self._stop_relay()
        port, bridge_end = self._port_names()
        tap, bridge = self.tap, self.network.bridge
        self._spliced = True
        self._host("sh", "-c", f"""set -e
ip link add {port} type veth peer name {bridge_end}
for dev in {port} {bridge_end} {tap}; do
  sysctl -qw net.ipv6.conf.$dev.disable_ipv6=1
done
ip link set {port} up promisc on
ip link set {bridge_end} master {bridge} up
ip link set {tap} nomaster promisc on""")
        logfile = self.vm.directory / f"relay-{tap}.log"
        start = logfile.stat().st_size if logfile.exists() else 0  # earlier relays' lines
        self._relay = proc.spawn(self.lab.host_argv(
            [sys.executable, "-u", str(Path(impair.__file__)), tap, port, str(ms)]),
            log_file=logfile)
        try:
            self._wait_for_relay(self._relay, logfile, start)
        except BaseException:
            self._stop_relay()  # the tap goes back on its bridge
            raise

    def _wait_for_relay(self, relay: subprocess.Popen[bytes], logfile: Path,
                        start: int) -> None:
        """Until the relay has both sockets open (frames sent earlier would be lost: the tap
        is off its bridge already), bounded by :data:`RELAY_READY_SECONDS`; a relay that
        exits or never gets ready is a :class:`LabError` quoting what it wrote."""
        def said() -> str:
            with logfile.open("rb") as handle:
                handle.seek(start)
                return handle.read().decode(errors="replace")

        def ready() -> bool | None:
            if impair.READY in said():
                return True
            if relay.poll() is not None:
                raise LabError(f"{self.label}: the delay relay exited ({relay.returncode}) "
                               f"before it was ready: {said().strip()[-300:] or 'no output'}")
            return None

        try:
            retry_until(ready, timeout=RELAY_READY_SECONDS, interval=0.05,
                        what=f"{self.label}: the delay relay")
        except GuestTimeout as exc:
            raise LabError(f"{exc} (it wrote: {said().strip()[-300:] or 'nothing'})") from None

    def _stop_relay(self) -> None:
        port, _bridge_end = self._port_names()
        if self._relay is not None:
            proc.stop_spawned(self._relay, f"{self.label}: the delay relay")
            self._relay = None
        if self._spliced:
            self._host("ip", "link", "del", port, check=False)
            self._host("ip", "link", "set", self.tap, "promisc", "off", "master",
                       self.network.bridge, check=False)
            self._spliced = False


