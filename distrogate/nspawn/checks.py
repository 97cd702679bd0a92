"""The checks: does this image run a locked-down nspawn container the way the fleet needs?

Each check is a function ``check_x(machine, box) -> CheckResult`` that runs real commands in the
guest (machinectl, systemd-run, journalctl) against an installed container and says what it
expected and what came back (output, exit code), with the relevant journal lines of the host and
the container when it failed. :meth:`CheckResult.observation` is what the differential model
compares between the images (see :mod:`distrogate.nspawn.compare`).

Host-side checks observe what the fleet's host agents rely on, from the host (the VM that runs
nspawn), not from inside the container: the log shipper reads the host's own journal files
(``host_journal``: the container's lines through ``journalctl -m`` and in the files under
/var/log/journal, not only ``journalctl -M``), the metrics agent the container's cgroup
(``host_metrics``: its service's processes and memory accounting under the host's
machine.slice). :func:`run_checks` runs them all in order (start first, poweroff
last); checks that need a running container are not attempted once ``start`` failed.

About exit codes: ``machinectl shell`` does not propagate the invoked command's exit status
(machinectl(1) of systemd 252 and 257 says so; use ``systemd-run --wait``). The exit-code
check therefore holds machinectl to its documented contract: 0 when the session ran (the
command's own status, if a later systemd propagates it, is accepted too), non-zero when no
session could be opened, and the command's non-zero status arrives through ``systemd-run``.
"""

from __future__ import annotations

import logging
import secrets
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from distrogate.differential import Value
from distrogate.errors import GuestCommandTimeout
from distrogate.guest.machine import Machine
from distrogate.nspawn.install import Installed, volume_dir

log = logging.getLogger(__name__)

JOURNAL_LINES = 30
COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class Bounds:
    """Time limits (seconds) for the bounded waits; from ``suites.nspawn`` in the policy."""

    start: float = 120.0  # machinectl start → running and booted
    service: float = 120.0  # the service inside → active
    poweroff: float = 60.0  # machinectl poweroff → gone
    journal: float = 30.0  # a logged line → visible through journalctl -M

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bounds:
        """Read ``start_timeout_s``, ``service_timeout_s``, ``poweroff_timeout_s``,
        ``journal_timeout_s`` (positive numbers); missing keys keep the defaults."""
        values: dict[str, float] = {}
        for name in ("start", "service", "poweroff", "journal"):
            key = f"{name}_timeout_s"
            if key in config:
                value = config[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ValueError(f"suites.nspawn.{key}: expected a positive number of "
                                     f"seconds, got {value!r}")
                values[name] = float(value)
        return cls(**values)


@dataclass(frozen=True)
class Got:
    """What a command returned: exit code (None: it did not finish in time) and output."""

    exit_code: int | None
    stdout: str
    stderr: str = ""

    def short(self, limit: int = 400) -> str:
        """A one-line rendering for messages."""
        code = "timed out" if self.exit_code is None else f"exit {self.exit_code}"
        parts = [code, f"stdout {_clip(self.stdout, limit)!r}"]
        if self.stderr:
            parts.append(f"stderr {_clip(self.stderr, limit)!r}")
        return ", ".join(parts)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one machine."""

    check: str  # stable id, e.g. "shell_output"
    operation: str  # the operation under test, as an operator would type it
    ok: bool
    expected: str
    got: Got
    seconds: float
    detail: str = ""  # what differed from the expectation
    host_journal: tuple[str, ...] = ()
    container_journal: tuple[str, ...] = ()
    not_attempted: str = ""  # why the check was not run (a prerequisite failed)

    def summary(self) -> str:
        """One line: the operation, and for a failure what was expected and what came back."""
        if self.ok:
            return f"{self.operation}: ok ({self.seconds:.1f}s)"
        if self.not_attempted:
            return f"{self.operation}: not attempted ({self.not_attempted})"
        return (f"{self.operation}: expected {self.expected}; got {self.got.short()}"
                + (f" ({self.detail})" if self.detail else ""))

    def observation(self, limit: int = 400) -> Value:
        """What this check observed on its image, as the differential model compares it:
        whether it passed, the exit status and output tail of the command that decided, the
        seconds it took and, for a failure, what differed (or why it was not attempted)."""
        output = (self.got.stdout + ("\n" + self.got.stderr if self.got.stderr else "")).strip()
        value: dict[str, Any] = {"passed": self.ok, "exit": self.got.exit_code,
                                 "output": _clip(output[-limit:], limit),
                                 "seconds": self.seconds}
        if self.detail:
            value["detail"] = self.detail
        if self.not_attempted:
            value["not_attempted"] = self.not_attempted
        return Value(value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        data["host_journal"] = list(self.host_journal)
        data["container_journal"] = list(self.container_journal)
        return data


@dataclass
class Box:
    """An installed container under test and the bounds for waiting on it."""

    installed: Installed
    bounds: Bounds = field(default_factory=Bounds)

    @property
    def name(self) -> str:
        """The machine name."""
        return self.installed.machine

    @property
    def unit(self) -> str:
        """The PostgreSQL unit inside the container."""
        return self.installed.artifact.service

    def data_dir(self) -> str:
        """The host directory of the container's PostgreSQL volume."""
        volume = next(v for v in self.installed.spec.volumes if v.target == "/var/lib/postgresql")
        return volume_dir(self.installed.spec, volume.name)


class _CheckFailedError(Exception):
    """Internal: a check's expectation did not hold."""

    def __init__(self, detail: str, got: Got) -> None:
        super().__init__(detail)
        self.detail = detail
        self.got = got


# -- helpers ----------------------------------------------------------------------------------

def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def run(machine: Machine, command: str | list[str], *, timeout: float = COMMAND_TIMEOUT,
        stdin: bytes | None = None) -> Got:
    """Run ``command`` in the guest; a command that overruns ``timeout`` is ``exit_code=None``."""
    try:
        result = machine.execute(command, timeout=timeout, stdin=stdin)
    except GuestCommandTimeout as exc:  # the command was killed
        return Got(None, "", str(exc))
    return Got(result.exit_code, result.stdout_text, result.stderr_text)


def no_stdin(argv: Sequence[str]) -> list[str]:
    """``argv`` with standard input from /dev/null, as an operator's command line in a script.

    (machinectl shell of systemd 257 ends the session as soon as a *pipe* on its standard input
    reaches end of file; with /dev/null it runs the command like 252 does.)
    """
    return ["/bin/sh", "-c", 'exec "$@" </dev/null', "sh", *argv]


def in_container(box: Box, argv: Sequence[str], *, uid: str | None = None) -> list[str]:
    """``systemd-run -M NAME --wait --pipe --quiet --collect [--uid] ARGV``: a command in the
    container whose exit status, stdout and stderr come back separately."""
    command = ["systemd-run", "-M", box.name, "--wait", "--pipe", "--quiet", "--collect"]
    if uid:
        command.append(f"--uid={uid}")
    return [*command, *argv]


def _wait(machine: Machine, command: str | list[str], *, timeout: float,
          accept: Callable[[Got], bool], interval: float = 1.0) -> tuple[Got, float]:
    """Run ``command`` until ``accept(got)``; return the last result and the seconds it took.

    Raises :class:`_CheckFailedError` with the last result when ``timeout`` runs out.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        remaining = deadline - time.monotonic()
        got = run(machine, command, timeout=max(5.0, min(COMMAND_TIMEOUT, remaining)))
        if accept(got):
            return got, time.monotonic() - started
        if time.monotonic() + interval > deadline:
            raise _CheckFailedError(f"not reached within {timeout:g}s", got)
        time.sleep(interval)


def _guest_epoch(machine: Machine) -> int:
    got = run(machine, ["date", "+%s"], timeout=15)
    try:
        return int(got.stdout.strip())
    except ValueError:
        return 0


def host_journal(machine: Machine, box: Box, since: int) -> tuple[str, ...]:
    """The host's journal lines about the container since ``since`` (guest epoch seconds):
    its nspawn unit, machined and the bus."""
    argv = ["journalctl", "--no-pager", "-q", "-o", "short-monotonic", "-n", str(JOURNAL_LINES),
            f"--since=@{max(0, since - 1)}", "-u", f"systemd-nspawn@{box.name}.service",
            "-u", "systemd-machined.service", "-u", "dbus.service"]
    got = run(machine, argv, timeout=30)
    return tuple((got.stdout or got.stderr).splitlines()[-JOURNAL_LINES:])


def container_journal(machine: Machine, box: Box, since: int) -> tuple[str, ...]:
    """The container's own journal lines since ``since`` (through ``journalctl -M``)."""
    argv = ["journalctl", "-M", box.name, "--no-pager", "-q", "-o", "short-monotonic",
            "-n", str(JOURNAL_LINES), f"--since=@{max(0, since - 1)}"]
    got = run(machine, argv, timeout=30)
    return tuple((got.stdout or got.stderr).splitlines()[-JOURNAL_LINES:])


def _check(name: str, operation: str, expected: str,
           body: Callable[[], Got], machine: Machine, box: Box) -> CheckResult:
    """Run ``body``; a :class:`_CheckFailedError` becomes a failed result with journal lines."""
    since = _guest_epoch(machine)
    started = time.monotonic()
    try:
        got = body()
    except _CheckFailedError as failure:
        seconds = time.monotonic() - started
        log.info("nspawn check %s on %s failed: %s", name, machine.name, failure.detail)
        return CheckResult(name, operation, False, expected, failure.got, round(seconds, 2),
                           failure.detail, host_journal(machine, box, since),
                           container_journal(machine, box, since))
    seconds = time.monotonic() - started
    return CheckResult(name, operation, True, expected, got, round(seconds, 2))


def _expect(condition: bool, detail: str, got: Got) -> None:
    if not condition:
        raise _CheckFailedError(detail, got)


def from_tty(text: str) -> str:
    """Output that passed through a terminal, with the line discipline's CR LF back to LF.

    ``machinectl shell`` runs the command on a pseudo-terminal in the container, whose ``onlcr``
    turns every LF into CR LF; that is terminal behaviour, not the command's output.
    """
    return text.replace("\r\n", "\n")


def tty_output_matches(got: str, expected: str) -> bool:
    """Whether terminal output ``got`` is exactly ``expected`` (after :func:`from_tty`).

    One extra LF at the end is accepted when ``expected`` does not end in one: machinectl's
    PTY forwarder ends the session on a new line. Every other byte must be equal.
    """
    text = from_tty(got)
    return text == expected or (not expected.endswith("\n") and text == expected + "\n")


def _token() -> str:
    return "dg" + secrets.token_hex(6)


# -- the checks -------------------------------------------------------------------------------

def _booted(got: Got) -> bool:
    return got.exit_code is not None and got.stdout.strip() in ("running", "degraded")


def _start_and_wait(machine: Machine, box: Box) -> Got:
    got = run(machine, ["machinectl", "start", box.name], timeout=box.bounds.start)
    _expect(got.exit_code == 0, "machinectl start failed", got)
    state, spent = _wait(machine, ["machinectl", "show", box.name, "-p", "State", "--value"],
                         timeout=box.bounds.start,
                         accept=lambda g: g.exit_code == 0 and g.stdout.strip() == "running")
    _wait(machine, ["systemctl", "-M", box.name, "is-system-running"],
          timeout=max(5.0, box.bounds.start - spent), accept=_booted)
    return state


def check_start(machine: Machine, box: Box) -> CheckResult:
    """``machinectl start NAME`` reaches State=running and the container's systemd finishes
    booting (running or degraded) within the start bound."""
    return _check(
        "start", f"machinectl start {box.name}",
        f"exit 0, then State=running and the container booted within {box.bounds.start:g}s",
        lambda: _start_and_wait(machine, box), machine, box)


def check_list_status(machine: Machine, box: Box) -> CheckResult:
    """``machinectl list`` lists the container; ``machinectl status`` shows its root and unit."""
    def body() -> Got:
        listed = run(machine, ["machinectl", "list", "--no-legend", "--no-pager"])
        rows = [line.split() for line in listed.stdout.splitlines()]
        _expect(listed.exit_code == 0 and any(r[:2] == [box.name, "container"] for r in rows),
                f"no row '{box.name} container' in machinectl list", listed)
        status = run(machine, ["machinectl", "status", box.name, "--no-pager"])
        _expect(status.exit_code == 0, "machinectl status failed", status)
        wanted = [f"Root: /var/lib/machines/{box.name}", f"Unit: systemd-nspawn@{box.name}.service"]
        missing = [w for w in wanted if w not in status.stdout]
        _expect(status.stdout.startswith(box.name + "(") and not missing,
                f"machinectl status lacks {missing or 'the NAME(ID) header'}", status)
        return status
    return _check("list_status", f"machinectl list / machinectl status {box.name}",
                  f"a '{box.name} container' row; status with the root and the nspawn unit",
                  body, machine, box)


SHELL_SCRIPT = 'printf "%s\\n" alpha "two  words" "tab\there"; printf no-newline; touch "$1"'
SHELL_OUTPUT = "alpha\ntwo  words\ntab\there\nno-newline"


def check_shell_output(machine: Machine, box: Box) -> CheckResult:
    """``machinectl shell NAME /bin/sh -c …`` runs the command to completion and returns its
    output byte for byte (no banner with ``-q``)."""
    marker = f".dg-shell-{_token()}"

    def body() -> Got:
        got = run(machine, no_stdin(["machinectl", "-q", "shell", box.name, "/bin/sh", "-c",
                                     SHELL_SCRIPT, "sh", f"/var/lib/postgresql/{marker}"]))
        _expect(got.exit_code == 0, "machinectl shell exited non-zero", got)
        _expect(tty_output_matches(got.stdout, SHELL_OUTPUT), "output differs", got)
        ran = run(machine, ["test", "-e", f"{box.data_dir()}/{marker}"])
        _expect(ran.exit_code == 0, "the command's side effect is missing: machinectl shell "
                "returned before the command ran", got)
        run(machine, ["rm", "-f", f"{box.data_dir()}/{marker}"])
        return got
    return _check("shell_output",
                  f"machinectl shell {box.name} /bin/sh -c {shlex.quote(SHELL_SCRIPT)}",
                  f"exit 0 and stdout exactly {SHELL_OUTPUT!r} (CR LF from the terminal read as "
                  "LF); the command's file on the volume",
                  body, machine, box)


def check_shell_exit_code(machine: Machine, box: Box) -> CheckResult:
    """Exit codes around ``machinectl shell``: a command exiting 7 still prints its output and
    machinectl follows its contract (0, or 7 where the status is propagated); a session that
    cannot be opened (no such machine) exits non-zero; the 7 arrives through systemd-run."""
    def body() -> Got:
        got = run(machine, no_stdin(["machinectl", "-q", "shell", box.name, "/bin/sh", "-c",
                                     "echo before-exit; exit 7"]))
        _expect(tty_output_matches(got.stdout, "before-exit\n"),
                "the command did not run to its exit", got)
        _expect(got.exit_code in (0, 7), "machinectl shell exit code is neither its documented "
                "0 nor the command's 7", got)
        missing = run(machine, no_stdin(["machinectl", "-q", "shell", f"{box.name}-absent",
                                         "/bin/true"]))
        _expect(missing.exit_code not in (0, None), "machinectl shell on a missing machine "
                "did not exit non-zero", missing)
        status = run(machine, in_container(box, ["/bin/sh", "-c", "exit 7"]))
        _expect(status.exit_code == 7, "the command's exit status 7 did not come back "
                "through systemd-run --wait", status)
        return got
    return _check("shell_exit_code",
                  f"machinectl shell {box.name} /bin/sh -c 'echo before-exit; exit 7'",
                  "stdout 'before-exit\\n' and exit 0 (or 7); non-zero for a missing machine; "
                  "7 through systemd-run --wait", body, machine, box)


def check_shell_setenv(machine: Machine, box: Box) -> CheckResult:
    """``machinectl shell --setenv=VAR=value`` puts the variable into the command's environment."""
    value = _token() + " with spaces"

    def body() -> Got:
        got = run(machine, no_stdin(["machinectl", "-q", "shell", f"--setenv=DG_PROBE={value}",
                                     box.name, "/bin/sh", "-c", 'printf "%s" "$DG_PROBE"']))
        _expect(got.exit_code == 0 and tty_output_matches(got.stdout, value),
                "the variable did not arrive", got)
        return got
    return _check("shell_setenv", f"machinectl shell --setenv=DG_PROBE=… {box.name}",
                  f"exit 0 and stdout exactly {value!r}", body, machine, box)


def check_systemd_run(machine: Machine, box: Box) -> CheckResult:
    """``systemd-run -M NAME --wait -P …`` returns stdout, stderr and the exit status apart."""
    script = 'printf "out\\n"; printf "err\\n" >&2; exit 5'

    def body() -> Got:
        got = run(machine, in_container(box, ["/bin/sh", "-c", script]))
        _expect(got.exit_code == 5 and got.stdout == "out\n" and "err" in got.stderr,
                "exit status or streams differ", got)
        fine = run(machine, in_container(box, ["/bin/true"]))
        _expect(fine.exit_code == 0, "systemd-run of /bin/true did not exit 0", fine)
        return got
    return _check("systemd_run", f"systemd-run -M {box.name} --wait -P /bin/sh -c …",
                  "exit 5, stdout 'out\\n', stderr with 'err'; 0 for /bin/true",
                  body, machine, box)


def check_journal(machine: Machine, box: Box) -> CheckResult:
    """A line logged inside the container shows in ``journalctl -M NAME`` (not the host's)."""
    token = _token()
    query = ["journalctl", "-M", box.name, "--no-pager", "-q", "-o", "cat", "-t", "dg-probe"]

    def body() -> Got:
        logged = run(machine, in_container(box, ["logger", "-t", "dg-probe", token]))
        _expect(logged.exit_code == 0, "logger in the container failed", logged)
        got, _ = _wait(machine, query, timeout=box.bounds.journal,
                       accept=lambda g: g.exit_code == 0 and token in g.stdout.split())
        host = run(machine, ["journalctl", "--no-pager", "-q", "-o", "cat", "-t", "dg-probe"])
        _expect(token not in host.stdout, "the container's line is in the host's own journal",
                host)
        return got
    return _check("journal", f"journalctl -M {box.name}",
                  f"the container's line dg-probe: {token} within {box.bounds.journal:g}s",
                  body, machine, box)


def check_host_journal(machine: Machine, box: Box) -> CheckResult:
    """A line logged inside the container reaches the host's own journal files, where the
    fleet's host-side log shipper reads it: ``journalctl -m`` on the host, and the journal files
    under /var/log/journal (``journalctl -D``), not only ``journalctl -M``."""
    token = _token()
    tag = "dg-host-probe"
    merged = ["journalctl", "-m", "--no-pager", "-q", "-o", "cat", "-t", tag]
    files = ["journalctl", "-D", "/var/log/journal", "--no-pager", "-q", "-o", "cat", "-t", tag]

    def body() -> Got:
        logged = run(machine, in_container(box, ["logger", "-t", tag, token]))
        _expect(logged.exit_code == 0, "logger in the container failed", logged)
        _, spent = _wait(machine, merged, timeout=box.bounds.journal,
                         accept=lambda g: g.exit_code == 0 and token in g.stdout.split())
        on_disk, _ = _wait(machine, files, timeout=max(5.0, box.bounds.journal - spent),
                           accept=lambda g: g.exit_code == 0 and token in g.stdout.split())
        return on_disk
    return _check("host_journal", f"journalctl -m on the host (the journal of {box.name})",
                  f"the container's line {tag}: {token} in the host's journalctl -m and in "
                  f"the files under /var/log/journal within {box.bounds.journal:g}s",
                  body, machine, box)


HOST_CGROUP_SCRIPT = """set -e
cg=$(systemctl show -p ControlGroup --value "$1")
test -n "$cg" || { echo "no control group for $1"; exit 1; }
dir=/sys/fs/cgroup$cg
echo "memory.current: $(cat "$dir/memory.current")"
find "$dir" -name cgroup.procs -exec cat {} + | while read -r pid; do
  cat "/proc/$pid/comm" 2>/dev/null || true
done | sort -u
"""


def check_host_metrics(machine: Machine, box: Box) -> CheckResult:
    """The host's metrics agent sees the container: its nspawn unit's control group on the
    host holds the service's processes (``postgres``) and accounts their memory."""
    unit = f"systemd-nspawn@{box.name}.service"

    def body() -> Got:
        got = run(machine, ["/bin/sh", "-c", HOST_CGROUP_SCRIPT, "sh", unit])
        _expect(got.exit_code == 0, "the container's control group cannot be read on the host",
                got)
        lines = got.stdout.splitlines()
        memory = next((ln.split(":", 1)[1].strip() for ln in lines
                       if ln.startswith("memory.current:")), "")
        _expect(memory.isdigit() and int(memory) > 0, "no memory accounted to the container",
                got)
        _expect("postgres" in lines, "the service's processes are not in the container's "
                "control group on the host", got)
        return got
    return _check("host_metrics", f"the host's control group of {box.name} ({unit})",
                  "memory.current > 0 and postgres processes in the container's control group "
                  "on the host", body, machine, box)


def _psql(box: Box, sql: str) -> list[str]:
    return in_container(box, ["psql", "-XAtqc", sql], uid="postgres")


def check_service(machine: Machine, box: Box) -> CheckResult:
    """PostgreSQL inside the container becomes active and answers a query."""
    def body() -> Got:
        _wait(machine, ["systemctl", "-M", box.name, "is-active", box.unit],
              timeout=box.bounds.service, accept=lambda g: g.stdout.strip() == "active")
        got = run(machine, _psql(box, "select 6 * 7"))
        _expect(got.exit_code == 0 and got.stdout == "42\n", "the query did not answer 42", got)
        return got
    return _check("service", f"{box.unit} in {box.name}: psql -c 'select 6 * 7'",
                  f"{box.unit} active within {box.bounds.service:g}s; output '42\\n'",
                  body, machine, box)


def readonly_probe(paths_rw: Sequence[str], paths_ro: Sequence[str]) -> tuple[str, str]:
    """A shell script that tries to create a file in each path, and the output it must print
    when exactly ``paths_rw`` are writable."""
    lines = []
    expected = []
    for path in [*paths_ro, *paths_rw]:
        probe = shlex.quote(f"{path.rstrip('/')}/.dg-rw-probe")
        # A subshell: a failed redirection on ':' (a special built-in) would end dash itself.
        lines.append(f"if (: > {probe}) 2>/dev/null; then rm -f {probe}; echo {shlex.quote(path)} "
                     f"rw; else echo {shlex.quote(path)} ro; fi")
        expected.append(f"{path} {'rw' if path in paths_rw else 'ro'}")
    return "\n".join(lines), "".join(line + "\n" for line in expected)


READONLY_PATHS = ("/", "/usr", "/etc", "/var/lib", "/usr/lib/postgresql")


def check_readonly(machine: Machine, box: Box) -> CheckResult:
    """The container's root is read-only; the volumes are writable and land on the host's
    ``/srv/NAME/...``."""
    rw = [v.target for v in box.installed.spec.volumes]
    script, expected = readonly_probe(rw, READONLY_PATHS)
    token = _token()

    def body() -> Got:
        got = run(machine, in_container(box, ["/bin/sh", "-c", script]))
        _expect(got.exit_code == 0 and got.stdout == expected, "writability differs", got)
        wrote = run(machine, in_container(box, ["/bin/sh", "-c",
                                                f"echo {token} > /var/lib/postgresql/.dg-{token}"]))
        _expect(wrote.exit_code == 0, "writing to the data volume failed", wrote)
        host_copy = run(machine, ["cat", f"{box.data_dir()}/.dg-{token}"])
        _expect(host_copy.stdout == token + "\n", "the file is not on the host's volume",
                host_copy)
        run(machine, ["rm", "-f", f"{box.data_dir()}/.dg-{token}"])
        return got
    return _check("readonly", f"write probes in {box.name} (ReadOnly=yes, Bind= volumes)",
                  "exactly " + ", ".join(line for line in expected.splitlines()),
                  body, machine, box)


HOST_ONLY = ("qemu-ga", "systemd-machine", "systemd-nspawn")
PROC_SCRIPT = ('for p in /proc/[0-9]*; do cat "$p/comm" 2>/dev/null; done; '
               'echo "net: $(ls /sys/class/net)"')


def check_isolation(machine: Machine, box: Box) -> CheckResult:
    """The container sees its own processes only (PID 1 is its systemd, none of the host's
    daemons) and a private network with loopback only."""
    def body() -> Got:
        got = run(machine, in_container(box, ["/bin/sh", "-c", PROC_SCRIPT]))
        _expect(got.exit_code == 0, "listing processes in the container failed", got)
        lines = got.stdout.splitlines()
        names = [line for line in lines if not line.startswith("net: ")]
        leaked = sorted({n for n in names if n in HOST_ONLY})
        _expect(not leaked, f"host processes visible in the container: {leaked}", got)
        pid1 = run(machine, in_container(box, ["cat", "/proc/1/comm"]))
        _expect(pid1.stdout == "systemd\n", "PID 1 in the container is not its systemd", pid1)
        host = run(machine, "ls -d /proc/[0-9]* | wc -l")
        host_count = int(host.stdout.strip() or 0)
        _expect(len(names) < host_count, f"the container sees {len(names)} processes, the host "
                f"has {host_count}", got)
        _expect("net: lo" in lines, "network interfaces other than lo in the container", got)
        return got
    return _check("isolation", f"process and network view inside {box.name}",
                  "PID 1 systemd, none of " + ", ".join(HOST_ONLY) + ", fewer processes than "
                  "the host, interfaces: lo", body, machine, box)


def _poweroff_and_wait(machine: Machine, box: Box) -> tuple[Got, float]:
    got = run(machine, ["machinectl", "poweroff", box.name])
    _expect(got.exit_code == 0, "machinectl poweroff failed", got)
    gone, spent = _wait(
        machine, f"machinectl show {shlex.quote(box.name)} -p State --value >/dev/null 2>&1 "
        f"&& echo present || systemctl is-active systemd-nspawn@{shlex.quote(box.name)}.service",
        timeout=box.bounds.poweroff, accept=lambda g: g.stdout.strip() in ("inactive", "failed"),
        interval=0.5)
    _expect(gone.stdout.strip() == "inactive", "the nspawn unit ended failed", gone)
    return got, spent


def check_persistence(machine: Machine, box: Box) -> CheckResult:
    """A row written to PostgreSQL on the data volume survives a container restart
    (poweroff, start, service active again)."""
    token = _token()

    def body() -> Got:
        wrote = run(machine, _psql(box, "create table if not exists dg_probe (token text); "
                                        f"insert into dg_probe values ('{token}')"))
        _expect(wrote.exit_code == 0, "writing the row failed", wrote)
        _poweroff_and_wait(machine, box)
        _start_and_wait(machine, box)
        _wait(machine, ["systemctl", "-M", box.name, "is-active", box.unit],
              timeout=box.bounds.service, accept=lambda g: g.stdout.strip() == "active")
        got = run(machine, _psql(box, f"select token from dg_probe where token = '{token}'"))
        _expect(got.exit_code == 0 and got.stdout == token + "\n",
                "the row is gone after the restart", got)
        return got
    return _check("persistence", f"restart {box.name} (machinectl poweroff + start)",
                  f"the row {token!r} is still there after the restart", body, machine, box)


def check_poweroff(machine: Machine, box: Box) -> CheckResult:
    """``machinectl poweroff NAME`` stops the container within the bound (machine gone, nspawn
    unit inactive, not failed)."""
    def body() -> Got:
        got, _ = _poweroff_and_wait(machine, box)
        return got
    return _check("poweroff", f"machinectl poweroff {box.name}",
                  f"exit 0, then the machine gone and its unit inactive within "
                  f"{box.bounds.poweroff:g}s", body, machine, box)


CheckFn = Callable[[Machine, Box], CheckResult]

# In the order they run; ``start`` first, ``poweroff`` last.
CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("start", check_start),
    ("list_status", check_list_status),
    ("shell_output", check_shell_output),
    ("shell_exit_code", check_shell_exit_code),
    ("shell_setenv", check_shell_setenv),
    ("systemd_run", check_systemd_run),
    ("journal", check_journal),
    ("host_journal", check_host_journal),
    ("service", check_service),
    ("host_metrics", check_host_metrics),
    ("readonly", check_readonly),
    ("isolation", check_isolation),
    ("persistence", check_persistence),
    ("poweroff", check_poweroff),
)
CHECK_NAMES = tuple(name for name, _ in CHECKS)
OPERATIONS = {
    "start": "machinectl start", "list_status": "machinectl list/status",
    "shell_output": "machinectl shell", "shell_exit_code": "machinectl shell",
    "shell_setenv": "machinectl shell --setenv",
    "systemd_run": "systemd-run -M",
    "journal": "journalctl -M", "host_journal": "the container's journal on the host",
    "service": "the service inside the container",
    "host_metrics": "the container's control group on the host",
    "readonly": "read-only root with writable volumes", "isolation": "process isolation",
    "persistence": "data surviving a restart", "poweroff": "machinectl poweroff",
}


def not_attempted(name: str, box: Box, reason: str) -> CheckResult:
    """The result of a check that was skipped because a prerequisite failed."""
    return CheckResult(name, f"{OPERATIONS[name]} ({box.name})", False, "a running container",
                       Got(None, ""), 0.0, reason, not_attempted=reason)


def run_checks(machine: Machine, box: Box,
               only: Sequence[str] | None = None) -> list[CheckResult]:
    """Run the checks (all, or those named in ``only``) in order on ``machine``.

    If ``start`` fails, the others (which need a running container) are reported as not
    attempted; the container is powered off at the end if it still runs.
    """
    wanted = set(only) if only is not None else set(CHECK_NAMES)
    unknown = wanted - set(CHECK_NAMES)
    if unknown:
        raise ValueError(f"unknown nspawn checks: {sorted(unknown)} (known: {CHECK_NAMES})")
    results: list[CheckResult] = []
    started_ok = True
    for name, fn in CHECKS:
        if name not in wanted and name != "start":
            continue
        if name != "start" and not started_ok:
            results.append(not_attempted(name, box, "machinectl start failed"))
            continue
        result = fn(machine, box)
        log.info("nspawn %s on %s: %s", name, machine.name, result.summary())
        if name == "start":
            started_ok = result.ok
        if name in wanted:
            results.append(result)
    # Leave no container running, whatever happened (an error if it is already gone: ignored).
    run(machine, ["machinectl", "terminate", box.name], timeout=30)
    return results
