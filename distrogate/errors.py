"""The exception hierarchy. Every message is one line that names the input and what is wrong.

Two families matter for the verdict: :class:`InfraError` (the lab or the harness broke: never a
reason to reject an image) and :class:`InputError` (the user gave something unusable). Failures
of the image itself are assertions in suites, not exceptions from here.
"""

from __future__ import annotations


class DistrogateError(Exception):
    """Base class: a one-line, actionable message."""


class InputError(DistrogateError):
    """Bad input: a missing or corrupt file, a malformed spec or policy, an unknown name."""


class SpecError(InputError):
    """A malformed image spec; the message names the file and the key."""

    def __init__(self, path: object, key: str, problem: str) -> None:
        super().__init__(f"{path}: key '{key}': {problem}")
        self.path = path
        self.key = key


class InfraError(DistrogateError):
    """The lab or the harness failed (a daemon died, a command timed out on the host)."""


class CommandError(InfraError):
    """A host command failed; the message quotes the command and the tail of its stderr."""


class LabError(InfraError):
    """The lab (libvirtd, networks, domains) could not do what was asked."""


class GuestError(InfraError):
    """A guest misbehaved at the infrastructure level: never booted, agent gone, panicked.

    ``console_log`` points at the guest's serial console capture when there is one.
    """

    def __init__(self, message: str, console_log: object | None = None) -> None:
        if console_log is not None:
            message = f"{message} (console log: {console_log})"
        super().__init__(message)
        self.console_log = console_log


class GuestTimeout(GuestError):
    """A bounded wait on a guest ran out."""


class GuestCommandFailed(AssertionError):
    """A command in the guest did not end as the caller required (``succeed``/``fail``).

    This is an AssertionError on purpose: it is a statement about the image, so a suite that
    uses ``succeed`` reports *failed*, not *error*.
    """
