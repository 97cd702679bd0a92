"""Driving dnf in one guest: the fleet's configuration, one fault cell, the speed runs.

The guest gets what a management agent gives a node: the repository's public key imported
into rpm's database, a repo file pointing at the mirror's mirrorlist with ``gpgcheck=1`` and
``skip_if_unavailable=False`` (a node must not start on a silently skipped repository), the
mirrors' host names in ``/etc/hosts``, and the reference wrapper when the policy names it.
Each cell starts from the same state (the suite's packages removed with rpm, dnf's cache
emptied) and runs one dnf command under the client's fault script: ``dnf makecache`` for a
fault on ``repomd.xml`` or the metadata, ``dnf install`` of the package set (which fetches
the metadata first) for a fault on the packages or the mirrorlist; after an install it checks
that nothing is half-applied: either the whole closure of the set is installed and ``rpm -V``
finds nothing, or none of it is.
"""

from __future__ import annotations

import logging
import re
import shlex
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from distrogate.dnf.faults import MIRRORS, Script
from distrogate.dnf.mirror import mirror_host
from distrogate.dnf.mirrorctl import Mirror, requests_per_path
from distrogate.dnf.repo import PACKAGES, Repository
from distrogate.dnf.settings import REFERENCE_WRAPPER, DnfSettings
from distrogate.dnf.wrapper import classify
from distrogate.errors import GuestCommandTimeout, InputError
from distrogate.guest.machine import Machine

log = logging.getLogger(__name__)

REPO_FILE = "/etc/yum.repos.d/fleet.repo"
KEY_PATH = "/etc/pki/rpm-gpg/RPM-GPG-KEY-distrogate"
WRAPPER_PATH = f"/usr/local/sbin/{REFERENCE_WRAPPER}"
HANG = "hang"


def closure(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` and every suite package they require, directly or not (sorted)."""
    by_name = {p.name: p for p in PACKAGES}
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += by_name[name].requires
    return tuple(sorted(found))


def repo_text(address: str, port: int) -> str:
    """The fleet's repo file (see the module)."""
    host = f"[{address}]" if ":" in address else address
    return ("[fleet]\nname=the fleet's mirror (distrogate)\n"
            f"mirrorlist=http://{host}:{port}/mirrorlist\nenabled=1\ngpgcheck=1\n"
            f"gpgkey=file://{KEY_PATH}\nskip_if_unavailable=False\n")


_ATTEMPT = re.compile(r"^dg-dnf-retry: attempt \d+: .*class (\w+)", re.MULTILINE)


def outcome_class(exit_code: int, output: str, *, wrapped: bool) -> str:
    """The class of a run: dnf's output classified; through a wrapper, its exit status is
    the outcome (0: ok, whatever earlier attempts said) and the failure's class is the one
    the reference wrapper gave its last attempt, else the output's."""
    if not wrapped:
        return classify(exit_code, output)
    if exit_code == 0:
        return "ok"
    said: list[str] = _ATTEMPT.findall(output)
    if said and said[-1] != "ok":
        return str(said[-1])
    found = classify(exit_code, output)
    return "other" if found == "ok" else found


@dataclass
class Run:
    """One dnf (or wrapper) run: exit status (None: killed at the bound), class, time."""

    step: str
    exit: int | None
    error_class: str
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        """Whether it succeeded."""
        return self.error_class == "ok"

    def summary(self) -> dict[str, Any]:
        """JSON data without the output."""
        return {"step": self.step, "exit": self.exit, "class": self.error_class,
                "seconds": round(self.seconds, 2)}


@dataclass
class CellResult:
    """A cell (class on a target) on one image, in one mode (``raw`` or ``wrapper``)."""

    runs: list[Run] = field(default_factory=list)
    consistent: bool = True
    consistency: str = ""
    requests: dict[str, int] = field(default_factory=dict)
    faults: int = 0
    skipped: str = ""

    @property
    def ok(self) -> bool:
        """Survived: every run succeeded and nothing is half-applied."""
        return bool(self.runs) and all(r.ok for r in self.runs) and self.consistent

    @property
    def failed_run(self) -> Run | None:
        """The run that failed, if one did."""
        return next((r for r in self.runs if not r.ok), None)

    @property
    def seconds(self) -> float:
        """Time of every run together."""
        return sum(r.seconds for r in self.runs)

    def observation(self) -> dict[str, Any]:
        """What the judge and the matrix read (JSON data)."""
        bad = self.failed_run
        return {"ok": self.ok, "skipped": self.skipped,
                "step": bad.step if bad else "", "exit": bad.exit if bad else 0,
                "class": bad.error_class if bad else ("ok" if self.runs else ""),
                "seconds": round(self.seconds, 2), "consistent": self.consistent,
                "consistency": self.consistency, "requests": sum(self.requests.values()),
                "per_path": dict(self.requests),
                "faults": self.faults, "runs": [r.summary() for r in self.runs]}


class GuestDnf:
    """One image's guest under the suite: its address on the mirror's network, its versions,
    and the cells run on it."""

    def __init__(self, role: str, machine: Machine, client: str, mirror: Mirror,
                 settings: DnfSettings) -> None:
        self.role = role
        self.machine = machine
        self.client = client
        self.mirror = mirror
        self.settings = settings
        self.versions: dict[str, str] = {}
        self.transcripts: list[str] = []

    # -- set-up ------------------------------------------------------------------------------
    def prepare(self, repo: Repository, image_name: str) -> None:
        """The fleet's configuration (see the module); raises :class:`InputError` when the
        policy's wrapper command does not exist in the image."""
        m = self.machine
        m.succeed(["mkdir", "-p", "/etc/pki/rpm-gpg", "/etc/yum.repos.d", "/usr/local/sbin"],
                  timeout=30)
        m.write_file(KEY_PATH, repo.public_key.read_bytes())
        m.succeed(["rpm", "--import", KEY_PATH], timeout=60)
        names = " ".join(mirror_host(x) for x in MIRRORS)
        m.succeed(f"grep -q mirror.lab /etc/hosts 2>/dev/null || "
                  f"printf '127.0.0.1 localhost\\n{self.mirror.address} {names}\\n' "
                  f">> /etc/hosts", timeout=30)
        m.write_file(REPO_FILE, repo_text(self.mirror.address, self.mirror.port).encode())
        if self.settings.reference_wrapper:
            source = resources.files("distrogate.dnf").joinpath("wrapper.py").read_bytes()
            m.write_file(WRAPPER_PATH, source, mode=0o755)
        command = self.settings.wrapper.split()[0]
        found = m.execute(["sh", "-c", 'command -v "$1"', "sh", command], timeout=30)
        if found.exit_code != 0:
            raise InputError(f"suites.dnf.wrapper: the command {command!r} does not exist in "
                             f"image {image_name} ({self.role})")
        listing = m.execute(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "dnf",
                             "python3-dnf", "librepo0", "libcurl4", "libcurl4t64", "rpm"],
                            timeout=60).stdout_text
        for line in listing.splitlines():
            name, _, version = line.partition(" ")
            if version:
                self.versions[name] = version

    # -- runs --------------------------------------------------------------------------------
    def dnf(self, step: str, args: list[str], *, wrapped: bool) -> Run:
        """``dnf -y ARGS`` (or the wrapper with those arguments), bounded; output merged."""
        s = self.settings
        if wrapped:
            prefix = s.wrapper.split()
            if s.reference_wrapper:
                prefix = [prefix[0], "--budget", f"{s.wrapper_budget:g}", *prefix[1:]]
        else:
            prefix = ["dnf"]
        argv = [*prefix, "-y", *args]
        started = time.monotonic()
        try:
            done = self.machine.execute(["sh", "-c", 'exec "$@" 2>&1', "sh", *argv],
                                        timeout=s.command_timeout)
        except GuestCommandTimeout:
            seconds = time.monotonic() - started
            self.transcripts.append(f"$ {shlex.join(argv)}\n(killed after {seconds:.0f}s)\n")
            return Run(step, None, HANG, seconds, "")
        seconds = time.monotonic() - started
        output = done.stdout_text
        self.transcripts.append(f"$ {shlex.join(argv)}\n{output}(exit {done.exit_code}, "
                                f"{seconds:.1f}s)\n")
        return Run(step, done.exit_code, outcome_class(done.exit_code, output, wrapped=wrapped),
                   seconds, output)

    def reset(self, *, packages: bool = True) -> None:
        """dnf's cache emptied and (with ``packages``) the suite's packages removed (with
        rpm: no transaction of dnf's own)."""
        remove = ("rpm -qa --qf '%{NAME}\\n' 'dg-*' | xargs -r rpm -e --nodeps; "
                  if packages else "")
        self.machine.succeed(remove + "rm -rf /var/cache/dnf/*", timeout=120)

    def check_applied(self, installed_ok: bool) -> tuple[bool, str]:
        """Whether nothing is half-applied (see the module), and what was found."""
        want = closure(self.settings.packages)
        done = self.machine.execute(
            "rpm -qa --qf '%{NAME}\\n' 'dg-*' | sort; echo ---; "
            "rpm -qa 'dg-*' | xargs -r rpm -V 2>&1; true", timeout=120)
        have_text, _, verify = done.stdout_text.partition("---\n")
        have = tuple(sorted(have_text.split()))
        if verify.strip():
            return False, f"rpm -V: {verify.strip()[:300]}"
        if have == want:
            return True, f"installed and verified: {', '.join(have)}"
        if not have and not installed_ok:
            return True, "nothing installed"
        return False, (f"half-applied: installed {', '.join(have) or 'nothing'}, the set "
                       f"needs {', '.join(want)}")

    def cell(self, script: Script, mode: str, step: str) -> CellResult:
        """One cell in ``mode`` (``raw``: plain dnf; ``wrapper``): ``dnf makecache`` for a
        fault on the metadata (``step`` ``makecache``), ``dnf install`` of the package set
        from an empty cache for a fault on the packages or the mirrorlist (``install``: it
        fetches the metadata first); then the half-applied check."""
        self.reset(packages=step == "install")
        labelled = Script(f"{self.role}:{script.label}:{mode}", script.rules, script.hosts)
        self.mirror.set_script(self.client, labelled)
        result = CellResult()
        args = ["makecache"] if step == "makecache" else ["install", *self.settings.packages]
        run = self.dnf(step, args, wrapped=mode == "wrapper")
        result.runs.append(run)
        if step == "install":
            result.consistent, result.consistency = self.check_applied(run.ok)
        entries = self.mirror.requests(self.client, labelled.label)
        result.requests = requests_per_path(entries)
        result.faults = sum(1 for e in entries if e.get("fault"))
        log.info("%s %s %s: %s", self.role, script.label, mode,
                 "survived" if result.ok else result.observation()["class"])
        return result

    def speed(self, lockstep: threading.Barrier | None = None
              ) -> tuple[list[float], list[float]]:
        """Clean-mirror ``makecache`` and ``install`` times (seconds), ``speed_runs`` each.

        With ``lockstep`` (a barrier the other image's guest shares), each run starts on both
        guests at once, so that whatever else keeps the host busy slows both sides alike.
        A run that fails is left out of its sample (the rule then has fewer values)."""
        makecache: list[float] = []
        install: list[float] = []

        def wait() -> None:
            if lockstep is not None:
                lockstep.wait(timeout=2 * self.settings.command_timeout)

        try:
            installs = "install" in self.settings.speed
            for index in range(self.settings.speed_runs):
                # the packages go before every install run; makecache alone needs them gone
                # once (the cells left some installed), not an rpm -e per run
                self.reset(packages=installs or index == 0)
                self.mirror.set_script(self.client, Script(f"{self.role}:speed:{index}"))
                wait()
                run = self.dnf("makecache", ["makecache"], wrapped=False)
                if run.ok:
                    makecache.append(run.seconds)
                wait()
                if run.ok and "install" in self.settings.speed:
                    run = self.dnf("install", ["install", *self.settings.packages],
                                   wrapped=False)
                    if run.ok:
                        install.append(run.seconds)
        except BaseException:
            if lockstep is not None:
                lockstep.abort()  # the other guest stops waiting for this one
            raise
        return makecache, install

    def fetch(self, path: str) -> tuple[int, float]:
        """Download ``path`` of the first mirror in the guest with Python's urllib (no dnf):
        (bytes, seconds timed in the guest). The bench's throughput figure."""
        url = f"http://{mirror_host(MIRRORS[0])}:{self.mirror.port}/{MIRRORS[0]}/{path}"
        code = ("import sys,time,urllib.request\nt=time.monotonic()\n"
                "n=len(urllib.request.urlopen(sys.argv[1],timeout=60).read())\n"
                "print(n,time.monotonic()-t)\n")
        self.mirror.set_script(self.client, Script(f"{self.role}:fetch"))
        out = self.machine.succeed(["python3", "-c", code, url], timeout=120)
        size, seconds = out.split()
        return int(size), float(seconds)

    def history(self) -> tuple[bool, str]:
        """``dnf history list``: whether every transaction completed, and the listing."""
        done = self.machine.execute("dnf history list 2>&1", timeout=self.settings.
                                    command_timeout)
        text = done.stdout_text
        broken = [line for line in text.splitlines()
                  if "|" in line and ("**" in line or line.rstrip().endswith("#"))]
        return (done.exit_code == 0 and not broken), text
