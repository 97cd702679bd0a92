"""The ``distrogate`` command line.

Exit codes: 0 success (promote, for ``gate``/``verdict``); 1 reject; 2 inconclusive;
3 bad input (missing or corrupt image, malformed spec or policy); 4 the lab or harness failed;
130 interrupted. ``run`` exits with the guest command's own exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from distrogate.errors import DistrogateError, InputError

if TYPE_CHECKING:
    from distrogate.lab.run import LabRun

log = logging.getLogger(__name__)

EXIT_INPUT = 3
EXIT_INFRA = 4
EXIT_INTERRUPTED = 130

EPILOG = """\
exit codes: 0 ok / promote, 1 reject, 2 inconclusive, 3 bad input, 4 lab or harness failure,
130 interrupted; `run` exits with the guest command's exit code.
IMAGE is a built-in spec name (promoted, candidate), a spec file (*.yaml) or a disk image file
(qcow2 or raw, booted through UEFI firmware and cloud-init).
state lives in $DISTROGATE_HOME (default ~/.cache/distrogate).
"""


def _setup_logging(verbosity: int) -> None:
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _use_template(args: argparse.Namespace) -> bool:
    """Restore from a warm template (kept in the cache across labs) unless ``--cold``."""
    return not args.cold


@contextlib.contextmanager
def _lab_run(args: argparse.Namespace) -> Iterator[LabRun]:
    from distrogate.lab.lab import Lab
    from distrogate.lab.run import LabRun

    lab = Lab.ensure(getattr(args, "lab_dir", None), getattr(args, "libvirt_uri", None))
    keep = getattr(args, "keep_vms", False)
    try:
        run = LabRun(lab, keep_vms=keep)
        try:
            yield run
        finally:
            # A lab of this command's own goes as a whole (its namespace's processes are
            # killed at once), which is faster than destroying each VM through libvirt.
            run.close(vms=not lab.owned_by_me or keep)
    finally:
        if lab.owned_by_me and not keep:
            lab.teardown()


# -- image ---------------------------------------------------------------------------------
def cmd_image_build(args: argparse.Namespace) -> int:
    from distrogate.images.build import build_image
    from distrogate.images.resolve import resolve_spec

    spec = resolve_spec(args.spec)
    if spec is None:
        raise InputError(f"{args.spec}: not an image spec (a name under images/ or a .yaml file)")
    artifact = build_image(spec)
    print(json.dumps({"directory": str(artifact.directory), **artifact.summary()}, indent=2))
    return 0


def cmd_image_import(args: argparse.Namespace) -> int:
    from distrogate.images.intake import import_image

    artifact = import_image(Path(args.path), name=args.name)
    print(json.dumps({"directory": str(artifact.directory), **artifact.summary()}, indent=2))
    return 0


def cmd_image_list(args: argparse.Namespace) -> int:
    from distrogate import paths
    from distrogate.artifacts import read_manifest
    from distrogate.images.artifact import IMAGE_KINDS, ImageArtifact

    store = paths.image_store()
    rows = []
    for manifest in sorted(store.glob("*/manifest.json")) if store.is_dir() else []:
        directory = manifest.parent
        if directory.name.startswith(".") or read_manifest(directory, IMAGE_KINDS) is None:
            continue  # a build under way, or not an image (an nspawn tree of an older version)
        image = ImageArtifact.load(directory)
        rows.append((image.name, image.manifest.get("kind", "?"), image.release, image.glibc,
                     image.digest[:12], directory.name[:16]))
    print(f"{'NAME':<20} {'KIND':<9} {'RELEASE':<10} {'GLIBC':<22} {'DIGEST':<13} KEY")
    for row in rows:
        print(f"{row[0]:<20} {row[1]:<9} {row[2]:<10} {row[3]:<22} {row[4]:<13} {row[5]}")
    return 0


def cmd_image_inspect(args: argparse.Namespace) -> int:
    from distrogate.images.resolve import resolve_image

    image = resolve_image(args.image)
    manifest: dict[str, Any] = dict(image.manifest)
    if not args.packages:
        packages = manifest.pop("packages", {})
        manifest["packages"] = f"{len(packages)} packages (--packages lists them)"
    print(json.dumps({"directory": str(image.directory), **manifest}, indent=2))
    return 0


# -- lab -----------------------------------------------------------------------------------
def cmd_lab_up(args: argparse.Namespace) -> int:
    from distrogate.lab.lab import Lab

    lab = Lab.start(args.lab_dir or Lab.default_dir(), persistent=True)
    print(json.dumps(lab.status(), indent=2))
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    from distrogate.lab.lab import Lab

    directory = args.lab_dir or Lab.default_dir()
    lab = Lab.load(directory)
    if lab is None:
        log.info("no lab in %s", directory)
        return 0
    lab.teardown()
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    from distrogate import paths
    from distrogate.lab.daemon import list_netns
    from distrogate.lab.lab import PREFIX, Lab

    directories = [args.lab_dir] if args.lab_dir else sorted(
        p for p in paths.labs_dir().glob("*") if p.is_dir()) if paths.labs_dir().is_dir() else []
    labs = [lab.status() for d in directories if (lab := Lab.load(d)) is not None]
    netns = list_netns(PREFIX)
    report = {"labs": labs, "netns": netns}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not labs:
        print("no labs")
    for info in labs:
        state = "up" if info["alive"] else "down"
        print(f"lab {info['directory']} ({info['kind']}, {state}, netns {info['netns']})")
        print(f"  domains:  {', '.join(info['domains']) or 'none'}")
        print(f"  networks: {', '.join(info['networks']) or 'none'}")
        print(f"  overlays: {', '.join(info['overlays']) or 'none'}")
    print(f"network namespaces: {', '.join(netns) or 'none'}")
    return 0


def cmd_lab_gc(args: argparse.Namespace) -> int:
    from distrogate.lab.reaper import gc

    removed = gc()
    print("\n".join(removed) if removed else "nothing to remove")
    return 0


# -- run / shell ---------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from distrogate.images.resolve import resolve_image

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise InputError("run: no command given (usage: distrogate run IMAGE -- CMD ARGS...)")
    image = resolve_image(args.image)
    with _lab_run(args) as run:
        machine = run.boot(image, role="run", template=_use_template(args))
        result = machine.execute(command, timeout=args.timeout)
        sys.stdout.buffer.write(result.stdout)
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(result.stderr)
        sys.stderr.buffer.flush()
        code = result.exit_code
    return code if code >= 0 else 128 - code


def cmd_shell(args: argparse.Namespace) -> int:
    from distrogate.images.resolve import resolve_image

    image = resolve_image(args.image)
    with _lab_run(args) as run:
        machine = run.boot(image, role="shell", template=_use_template(args))
        print(f"# {machine.name}: commands run through the guest agent (no tty); "
              "`exit` or Ctrl-D ends the session and removes the VM", file=sys.stderr)
        cwd = "/root"
        code = 0
        while True:
            try:
                line = input(f"{image.name}:{cwd}# ")
            except EOFError:
                break
            if line.strip() in ("exit", "logout"):
                break
            if not line.strip():
                continue
            script = f'cd "$1" 2>/dev/null; {line}\nrc=$?; pwd > /run/.distrogate-pwd; exit $rc'
            result = machine.execute(["/bin/sh", "-c", script, "sh", cwd], timeout=args.timeout)
            sys.stdout.buffer.write(result.stdout)
            sys.stdout.flush()
            sys.stderr.buffer.write(result.stderr)
            code = result.exit_code
            with contextlib.suppress(DistrogateError, AssertionError):
                cwd = machine.read_file("/run/.distrogate-pwd").decode().strip() or cwd
        return code


def allow_backing_option(p: argparse.ArgumentParser) -> None:
    """``--allow-backing DIR``: a folder an imported image's backing files may be in."""
    p.add_argument("--allow-backing", action="append", type=Path, metavar="DIR", default=[],
                   help="allow an imported image's backing files in DIR (besides its own "
                   "folder); repeatable")


def _export_allow_backing(args: argparse.Namespace) -> None:
    """Pass ``--allow-backing`` on to image intake here and in the gate's test processes."""
    from distrogate.images.qemuimg import ALLOW_BACKING_ENV

    dirs = [str(d.resolve()) for d in getattr(args, "allow_backing", None) or []]
    if dirs:
        os.environ[ALLOW_BACKING_ENV] = os.pathsep.join(dirs)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="distrogate", description="Gate a candidate machine image against the promoted "
        "one: boot both in libvirt VMs, run regression suites, answer promote or reject.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def lab_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--lab-dir", type=Path, help="use (or start) the lab in this directory")
        p.add_argument("--libvirt-uri", help="use an existing libvirt daemon instead of a private lab")
        p.add_argument("--keep-vms", action="store_true", help="leave VMs and files for debugging")
        allow_backing_option(p)

    image = sub.add_parser("image", help="build, import, list and inspect images")
    image_sub = image.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    p = image_sub.add_parser("build", help="build a spec (cached by the digest of the resolved spec)")
    p.add_argument("spec", help="spec name (promoted, candidate) or path to a .yaml spec")
    p.set_defaults(func=cmd_image_build)
    p = image_sub.add_parser("import", help="record a qcow2/raw image file (it is never written)")
    p.add_argument("path", help="the image file")
    p.add_argument("--name", help="a name for reports (default: the file name)")
    allow_backing_option(p)
    p.set_defaults(func=cmd_image_import)
    p = image_sub.add_parser("list", help="list cached and imported images")
    p.set_defaults(func=cmd_image_list)
    p = image_sub.add_parser("inspect", help="show an image's manifest (builds or imports it)")
    p.add_argument("image", help="IMAGE (see below)")
    p.add_argument("--packages", action="store_true", help="include the full package list")
    allow_backing_option(p)
    p.set_defaults(func=cmd_image_inspect)

    lab = sub.add_parser("lab", help="start, stop, inspect and clean the lab")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    for name, func, text in (("up", cmd_lab_up, "start a private lab that later runs reuse"),
                             ("down", cmd_lab_down, "stop a lab and remove everything in it"),
                             ("status", cmd_lab_status, "list labs, domains, networks, overlays"),
                             ("gc", cmd_lab_gc, "remove what killed runs left behind")):
        p = lab_sub.add_parser(name, help=text)
        p.add_argument("--lab-dir", type=Path, help="the lab directory (default: the default lab)")
        if name == "status":
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)

    p = sub.add_parser("run", help="boot IMAGE, run a command through the guest agent, print its "
                       "output, exit with its exit code, remove the VM",
                       epilog="example: distrogate run promoted -- sh -c 'exit 7'")
    p.add_argument("image", help="IMAGE (see below)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.add_argument("--timeout", type=float, default=600, help="seconds for the command (600)")
    p.add_argument("--cold", action="store_true", help="boot cold instead of from a warm template")
    lab_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("shell", help="boot IMAGE and run commands interactively (debugging)")
    p.add_argument("image", help="IMAGE (see below)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per command (600)")
    p.add_argument("--cold", action="store_true", help="boot cold instead of from a warm template")
    lab_options(p)
    p.set_defaults(func=cmd_shell)

    _add_gate_commands(sub, lab_options)
    return parser


def _add_gate_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                       lab_options: Callable[[argparse.ArgumentParser], None]) -> None:
    from distrogate import gatecli, scenariocli

    gatecli.add_commands(sub, lab_options)
    scenariocli.add_commands(sub, lab_options, _lab_run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run, turn errors into one line and an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(-1 if args.quiet else args.verbose)
    _export_allow_backing(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"distrogate: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except DistrogateError as exc:
        print(f"distrogate: error: {exc}", file=sys.stderr)
        return EXIT_INFRA
    except AssertionError as exc:
        print(f"distrogate: error: {exc}", file=sys.stderr)
        return EXIT_INFRA
    except KeyboardInterrupt:
        print("distrogate: interrupted; VMs and the lab were removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as exc:  # a file system or system call failure: the host, not the image
        log.debug("unexpected OS error", exc_info=True)
        print(f"distrogate: error: {exc}", file=sys.stderr)
        return EXIT_INFRA


if __name__ == "__main__":
    sys.exit(main())
