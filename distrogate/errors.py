"""The exception hierarchy. Every message is one line that names the input and what is wrong.

The outcome of a test follows the *cause* of its exception, in whichever pytest phase it is raised
(test body, fixture setup, a suite's module fixture, teardown):

* :class:`ImageFault` — a statement about the image (an ``AssertionError``; a plain ``assert``
  and ``pytest.fail`` count as one too): the test is *failed*.
* :class:`InfraError` — the lab or the harness broke, including a guest command that ran out of
  time: the test is *error* (the verdict can only be inconclusive), never a reason to reject.
* :class:`InputError` — the user gave something unusable: exit 3, before anything is booted.

A bound that is itself the property under test is not held as an absolute number: the suite
records the time it observed on each image and judges the candidate against the baseline's time
on the same lab (see :mod:`distrogate.differential`).
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


class ImageFault(AssertionError):
    """A statement about the image: it does not do what it must (the test is *failed*).

    An AssertionError on purpose, so that plain ``assert`` statements and this class mean the
    same to the verdict.
    """


class GuestCommandFailed(ImageFault):
    """A command in the guest did not end as the caller required (``succeed``/``fail``), or a
    unit the caller waits for failed or does not exist."""


class CandidateDoesNotBoot(ImageFault):
    """The candidate does not boot (or has no working guest agent) while the baseline boots on
    the same lab: a regression of the image, not of the lab."""


class GuestCommandTimeout(GuestTimeout):
    """A guest command (or a wait for a state) ran out of time.

    A lab problem: a slow or overloaded host makes commands slow on every image. A suite that
    checks a time bound records the times on both images and compares them instead.
    """


def is_image_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a statement about the image (so the test is *failed*, not *error*).

    AssertionErrors are (plain ``assert``, :class:`ImageFault`), and so is ``pytest.fail``;
    everything else (lab, harness, input, a bug in a suite) is not.
    """
    if isinstance(exc, AssertionError):
        return True
    return type(exc).__name__ == "Failed" and any(
        base.__module__.startswith("_pytest") for base in type(exc).__mro__)


def is_lab_fault(exc: BaseException) -> bool:
    """Whether ``exc`` says the lab broke, whatever the image: libvirt or the lab's plumbing
    (:class:`LabError`), or a guest that crashed or lost its agent (a :class:`GuestError`
    that is not a timeout). Narrower than ``not is_image_fault(exc)``: a wait that merely ran
    out of time is left to the comparison with the baseline, where a time is observed on
    both sides (a candidate that hangs is a finding; a slow lab slows both)."""
    return isinstance(exc, LabError) or (isinstance(exc, GuestError)
                                         and not isinstance(exc, GuestTimeout))
