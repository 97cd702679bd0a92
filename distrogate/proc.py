"""The one place where distrogate starts host processes.

Every call takes an argv list (never a shell string), runs with an explicit environment and
the C.UTF-8 locale, and has a required timeout. A failure raises :class:`CommandError` that
quotes the command and the tail of its stderr, on one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from distrogate.errors import CommandError

log = logging.getLogger(__name__)

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}


@dataclass(frozen=True)
class Completed:
    """The result of a finished host command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """Standard output decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stdout.decode(errors="replace")


def quote(argv: Sequence[str | Path]) -> str:
    """A shell-quoted rendering of ``argv`` for messages."""
    return shlex.join(str(a) for a in argv)


def _tail(data: bytes, limit: int = 300) -> str:
    text = " ".join(data.decode(errors="replace").split())
    return text[-limit:]


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    cwd: Path | None = None,
    capture: bool = True,
) -> Completed:
    """Run ``argv`` to completion within ``timeout`` seconds.

    The environment is :data:`BASE_ENV` plus ``env``. On timeout the whole process group is
    killed and :class:`CommandError` raised; with ``check`` a non-zero exit raises too.
    """
    args = [str(a) for a in argv]
    full_env = dict(BASE_ENV)
    if env:
        full_env.update(env)
    log.debug("run: %s", quote(args))
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise CommandError(f"cannot start `{quote(args)}`: {exc.strerror}") from exc
    try:
        stdout, stderr = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        raise CommandError(f"`{quote(args)}` timed out after {timeout:g}s") from exc
    except BaseException:
        _kill_group(proc)
        raise
    result = Completed(tuple(args), proc.returncode, stdout or b"", stderr or b"")
    if check and proc.returncode != 0:
        raise CommandError(
            f"`{quote(args)}` exited {proc.returncode}: {_tail(result.stderr or result.stdout)}"
        )
    return result


KILL_GRACE = 10.0  # seconds to reap a killed command and drain its pipes


def _kill_group(proc: subprocess.Popen[bytes], grace: float | None = None) -> None:
    """SIGKILL the command's process group and reap it, within a bound.

    A process that left the group (``setsid``) may keep the pipes open, and one stuck in the
    kernel may not die at once: after ``grace`` seconds the pipes are closed and the wait
    is given up with a warning, rather than waiting forever.
    """
    grace = KILL_GRACE if grace is None else grace
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("`%s` (pid %d) did not end %gs after SIGKILL; not waiting for it",
                    quote(proc.args if isinstance(proc.args, list) else [str(proc.args)]),
                    proc.pid, grace)
    else:
        log.warning("`%s` left processes outside its group holding its output; they were "
                    "not waited for", quote(proc.args if isinstance(proc.args, list)
                                            else [str(proc.args)]))


def spawn(argv: Sequence[str | Path], *, log_file: Path,
          env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running process (a daemon) in its own session, output to ``log_file``.

    The caller owns the process and must stop it (see :func:`stop`).
    """
    args = [str(a) for a in argv]
    full_env = dict(BASE_ENV)
    if env:
        full_env.update(env)
    log.debug("spawn: %s", quote(args))
    with log_file.open("ab") as out:
        try:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env=full_env, start_new_session=True)
        except OSError as exc:
            raise CommandError(f"cannot start `{quote(args)}`: {exc.strerror}") from exc


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop(pids: Sequence[int], *, grace: float = 5.0) -> None:
    """SIGTERM ``pids``, wait up to ``grace`` seconds, then SIGKILL what is left."""
    import time

    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def stop_spawned(process: subprocess.Popen[bytes], what: str, *, grace: float = 5.0) -> None:
    """Stop a process from :func:`spawn` (SIGTERM, then SIGKILL after ``grace``) and reap it,
    waiting at most ``grace`` seconds more; ``what`` names it in the warning if it lingers."""
    stop([process.pid], grace=grace)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("%s did not exit", what)
