"""A packet capture on a lab bridge, taken by tcpdump inside the lab's network namespace
(never in the image under test), written as a pcap file."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

from distrogate import proc
from distrogate.errors import LabError
from distrogate.lab.lab import Lab

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0


class Capture:
    """``start`` runs tcpdump on ``interface`` into ``pcap``; ``stop`` ends it (bounded)."""

    def __init__(self, lab: Lab, interface: str, pcap: Path, *, filter_expr: str = "") -> None:
        self.lab = lab
        self.interface = interface
        self.pcap = pcap
        self.filter_expr = filter_expr
        self._process: subprocess.Popen[bytes] | None = None
        self._log = pcap.with_suffix(".tcpdump.log")

    def start(self) -> None:
        """Start capturing; returns once tcpdump listens."""
        self.pcap.parent.mkdir(parents=True, exist_ok=True)
        self._log.unlink(missing_ok=True)
        # --immediate-mode: frames reach the file as they arrive, not when a buffer block
        # fills, so a capture stopped right after the traffic still holds it
        argv = self.lab.host_argv(["tcpdump", "-i", self.interface, "-n", "-U", "--immediate-mode",
                                   "-Z", "root", "-s", "0", "-w", str(self.pcap),
                                   *self.filter_expr.split()])
        self._process = proc.spawn(argv, log_file=self._log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            said = self._log.read_text(errors="replace") if self._log.exists() else ""
            if "listening on" in said:
                log.info("capturing %s into %s", self.interface, self.pcap)
                return
            if self._process.poll() is not None:
                raise LabError(f"tcpdump on {self.interface} exited: {said.strip()[-300:]}")
            time.sleep(0.05)
        self.stop()
        raise LabError(f"tcpdump on {self.interface} did not start within {START_TIMEOUT:g}s")

    def stop(self) -> None:
        """Stop tcpdump (its buffered packets are written first)."""
        if self._process is not None:
            proc.stop_spawned(self._process, f"tcpdump on {self.interface}")
            self._process = None
