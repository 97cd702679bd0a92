#!/usr/bin/python3
"""dg-dnf-retry: the DNF suite's reference retry wrapper (copied into each guest).

Usage: ``dg-dnf-retry [--budget SECONDS] [--backoff SECONDS] DNF-ARGUMENTS...`` runs
``dnf DNF-ARGUMENTS...`` and, when it fails, classifies the failure from dnf's output
(:func:`classify`):

* a *transient* class (a download that timed out, was reset, cut short, corrupted or refused
  with a 5xx status; a mirror that did not resolve; metadata that failed to download or
  parse) is retried, after 1 s, 2 s, 4 s, ... (at most 8 s; ``--backoff`` sets the first
  delay) while the budget lasts (``--budget``, default 90 s, counted from the start; an
  attempt still running when it ends is killed);
* a *non-transient* class fails at once, with dnf's exit code: depsolving (``Problem:``,
  nothing provides), a GPG failure, no package of that name, a 404 on every mirror, a failed
  transaction.

Exit status: 0 when an attempt succeeded; dnf's exit status on a non-transient failure; 75
(EX_TEMPFAIL) when the budget ran out on a transient one. dnf's output is passed through;
each attempt adds one line ``dg-dnf-retry: attempt N: exit X, class C, <decision>`` on
stderr. Standard library only (Python 3.9 or later); it imports nothing of distrogate, so the
same file runs in any image.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

TRANSIENT = ("checksum", "metadata_corrupt", "timeout", "reset", "truncated", "resolve",
             "http_5xx", "download")
NON_TRANSIENT = ("gpg", "depsolve", "not_found", "no_match", "transaction", "other")
EX_TEMPFAIL = 75

_PATTERNS = (
    ("gpg", r"GPG check FAILED|Public key for \S+ is not installed|"
            r"you do not have any GPG public keys installed|"
            r"The GPG keys listed for the .* are already installed but they are not correct|"
            r"Error: GPG|NOKEY|signature.*(?:BAD|not OK)"),
    ("depsolve", r"^\s*Problem( \d+)?: |nothing provides |conflicting requests|"
                 r"Depsolve Error|Error: (?:Package|package) .* requires"),
    ("checksum", r"checksum doesn't match|Checksum mismatch|checksum mismatch|"
                 r"Downloading successful, but checksum"),
    ("metadata_corrupt", r"repomd\.xml parser error|Parse error at line|"
                         r"primary\.xml.* (?:parser|parse) error|"
                         r"Error: Failed to (?:load|parse) (?:repo|metadata)"),
    ("timeout", r"Curl error \(28\)|Operation too slow|Timeout was reached|"
                r"Connection timed out after|Resolving timed out"),
    ("reset", r"Curl error \(56\)|Connection reset by peer|Recv failure"),
    ("truncated", r"Curl error \(18\)|transfer closed with \d+ bytes remaining|"
                  r"Transferred a partial file|Partial file"),
    ("resolve", r"Curl error \(6\)|Could not resolve host|Couldn't resolve host"),
    ("http_5xx", r"Status code: 5\d\d"),
)
_404 = re.compile(r"Status code: 404")
_DOWNLOAD = re.compile(r"Cannot download|All mirrors were (?:already )?tried|"
                       r"Failed to download metadata|Error downloading packages|"
                       r"No more mirrors to try|Librepo error|Curl error")
_NO_MATCH = re.compile(r"No match for argument|Unable to find a match")
_TRANSACTION = re.compile(r"Transaction check error|Error: Transaction failed|"
                          r"Error in (?:PRE|POST)?(?:IN|UN)?(?:-?TRANS)? scriptlet|"
                          r"error: unpacking of archive failed")
_METADATA_FAILED = re.compile(r"Failed to download metadata for repo|Ignoring repositories:")


def classify(exit_code: int, output: str) -> str:
    """The class of a dnf run from its exit code and output: ``ok`` when it succeeded (exit 0
    and no metadata download failed), else the first class that names the cause (see the
    module; a run whose only download errors are 404s is ``not_found``)."""
    if exit_code == 0 and not _METADATA_FAILED.search(output):
        return "ok"
    for name, pattern in _PATTERNS:
        if re.search(pattern, output, re.MULTILINE):
            return name
    if _404.search(output):
        return "not_found"
    if _DOWNLOAD.search(output):
        return "download"
    if _NO_MATCH.search(output):
        return "no_match"
    if _TRANSACTION.search(output):
        return "transaction"
    return "other"


def transient(error_class: str) -> bool:
    """Whether the wrapper retries ``error_class``."""
    return error_class in TRANSIENT


def main(argv: list[str]) -> int:
    """Run dnf with retries (see the module); returns the exit status."""
    budget, backoff = 90.0, 1.0
    args = list(argv)
    while args and args[0] in ("--budget", "--backoff"):
        if len(args) < 2:
            print(f"dg-dnf-retry: {args[0]} needs a value", file=sys.stderr)
            return 2
        try:
            value = float(args[1])
        except ValueError:
            print(f"dg-dnf-retry: {args[0]} {args[1]}: not a number", file=sys.stderr)
            return 2
        if args[0] == "--budget":
            budget = value
        else:
            backoff = value
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    started = time.monotonic()
    delay = backoff
    attempt = 0
    while True:
        attempt += 1
        left = budget - (time.monotonic() - started)
        try:
            done = subprocess.run(["dnf", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=max(left, 1.0))
            code, output = done.returncode, done.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired as exc:
            partial = exc.output.decode(errors="replace") if exc.output else ""
            sys.stdout.write(partial)
            print(f"dg-dnf-retry: attempt {attempt}: killed when the budget of {budget:g}s "
                  "ran out, class timeout, giving up", file=sys.stderr)
            return EX_TEMPFAIL
        sys.stdout.write(output)
        sys.stdout.flush()
        error_class = classify(code, output)
        if error_class == "ok":
            print(f"dg-dnf-retry: attempt {attempt}: exit {code}, class ok, done",
                  file=sys.stderr)
            return 0
        status = code or 1
        if not transient(error_class):
            print(f"dg-dnf-retry: attempt {attempt}: exit {code}, class {error_class}, "
                  "not transient: failing fast", file=sys.stderr)
            return status
        if time.monotonic() - started + delay >= budget:
            print(f"dg-dnf-retry: attempt {attempt}: exit {code}, class {error_class}, "
                  f"budget of {budget:g}s spent: giving up", file=sys.stderr)
            return EX_TEMPFAIL
        print(f"dg-dnf-retry: attempt {attempt}: exit {code}, class {error_class}, "
              f"retrying in {delay:g}s", file=sys.stderr)
        time.sleep(delay)
        delay = min(delay * 2, 8.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
