"""The suite's RPM repository, built on the host and cached by digest.

Packages are made with ``rpmbuild`` from generated spec files (payloads of deterministic,
incompressible bytes, stored uncompressed, no scriptlets, no automatic dependencies: the
images are Debian, so only the suite's own packages may be required), signed with ``rpmsign``
by an RSA key the build makes in a private ``GNUPGHOME``, and indexed by ``createrepo_c``.
The artifact (``$DISTROGATE_HOME/dnf-repo/<key>``, :func:`distrogate.paths.dnf_repo_store`)
holds ``repo/`` (what the mirror serves), ``RPM-GPG-KEY-distrogate`` (the public key the
guests import) and a manifest; the key is the digest of :data:`PACKAGES`, the builder version
and the tools' versions, so a change to any of them builds anew, atomically
(:func:`distrogate.artifacts.cached_build`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, TypedDict

from distrogate import paths, proc
from distrogate.artifacts import cached_build, now_utc, read_manifest, write_manifest
from distrogate.errors import InfraError

log = logging.getLogger(__name__)

REPO_KIND: Literal["dnf-repo"] = "dnf-repo"
BUILDER_VERSION = 1
KEY_FILE = "RPM-GPG-KEY-distrogate"
KEY_NAME = "distrogate test repository"
TOOLS = ("rpmbuild", "rpmsign", "createrepo_c", "gpg")


@dataclass(frozen=True)
class Package:
    """One package: its name, payload size and the suite packages it requires."""

    name: str
    size: int
    requires: tuple[str, ...] = ()


#: From a few KiB to tens of MiB, with dependencies between them.
PACKAGES: tuple[Package, ...] = (
    Package("dg-base", 4 << 10),
    Package("dg-lib", 256 << 10, ("dg-base",)),
    Package("dg-tool", 2 << 20, ("dg-lib",)),
    Package("dg-data", 24 << 20, ("dg-base",)),
    Package("dg-app", 64 << 10, ("dg-tool", "dg-data")),
)
VERSION, RELEASE = "1.0", "1"


class RepoManifest(TypedDict):
    """``manifest.json`` of a built repository."""

    kind: Literal["dnf-repo"]
    packages: list[dict[str, object]]
    files: dict[str, int]
    key_fingerprint: str
    tools: dict[str, str]
    built_at: str


@dataclass(frozen=True)
class Repository:
    """A built repository: ``root`` is served (``repodata/``, ``packages/``)."""

    directory: Path
    manifest: RepoManifest

    @property
    def root(self) -> Path:
        """The folder the mirror serves."""
        return self.directory / "repo"

    @property
    def public_key(self) -> Path:
        """The armoured public key the packages are signed with."""
        return self.directory / KEY_FILE

    def rpm_file(self, name: str) -> str:
        """The path of package ``name`` below :attr:`root`."""
        return f"packages/{name}-{VERSION}-{RELEASE}.noarch.rpm"


def tool_versions() -> dict[str, str]:
    """The first line of each tool's ``--version`` (part of the cache key); raises
    :class:`InfraError` naming a missing tool and the Debian package that has it."""
    found = {}
    packages = {"rpmbuild": "rpm", "rpmsign": "rpm", "createrepo_c": "createrepo-c",
                "gpg": "gnupg"}
    for tool in TOOLS:
        try:
            done = proc.run([tool, "--version"], timeout=30)
        except InfraError:
            raise InfraError(f"the DNF suite needs {tool} on the host (apt-get install "
                             f"{packages[tool]}; `make system-deps` does)") from None
        found[tool] = (done.text.strip().splitlines() or ["?"])[0]
    return found


def payload(package: Package) -> bytes:
    """The package's file: deterministic bytes that do not compress."""
    return random.Random(f"{package.name}-{VERSION}").randbytes(package.size)


def spec_text(package: Package) -> str:
    """The rpm spec of ``package``: one file under /opt/distrogate, no scriptlets."""
    requires = "".join(f"Requires: {r} = {VERSION}-{RELEASE}\n" for r in package.requires)
    return (f"Name: {package.name}\nVersion: {VERSION}\nRelease: {RELEASE}\n"
            f"Summary: distrogate DNF suite test package ({package.size} bytes)\n"
            f"License: MIT\nBuildArch: noarch\nAutoReqProv: no\n{requires}"
            f"Source0: {package.name}.bin\n\n"
            f"%description\nA package the distrogate DNF suite serves from its mirror.\n\n"
            f"%install\nmkdir -p %{{buildroot}}/opt/distrogate\n"
            f"cp %{{SOURCE0}} %{{buildroot}}/opt/distrogate/{package.name}.bin\n\n"
            f"%files\n/opt/distrogate/{package.name}.bin\n")


def cache_key(tools: dict[str, str]) -> str:
    """The digest naming a repository built from :data:`PACKAGES` with ``tools``."""
    doc = {"packages": [asdict(p) for p in PACKAGES], "version": VERSION, "release": RELEASE,
           "builder": BUILDER_VERSION, "tools": tools}
    return "repo-" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def build_repository(store: Path | None = None) -> Repository:
    """The repository, built first if it is not cached (see the module)."""
    tools = tool_versions()

    def build(work: Path) -> None:
        _build(work, tools)

    return cached_build(store or paths.dnf_repo_store(), cache_key(tools), load=_load,
                        build=build, what="the DNF suite's repository", timeout=900)


def _load(directory: Path) -> Repository | None:
    manifest = read_manifest(directory, (REPO_KIND,))
    if manifest is None or not (directory / "repo" / "repodata" / "repomd.xml").is_file():
        return None
    return Repository(directory, manifest)  # type: ignore[arg-type]


def _build(work: Path, tools: dict[str, str]) -> None:
    gnupg = work / "gnupg"
    gnupg.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(gnupg), "HOME": str(work)}
    proc.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
              "--quick-gen-key", KEY_NAME, "rsa3072", "sign", "never"], timeout=300, env=env)
    listing = proc.run(["gpg", "--batch", "--with-colons", "--list-keys", KEY_NAME],
                       timeout=60, env=env).text
    fingerprint = next((line.split(":")[9] for line in listing.splitlines()
                        if line.startswith("fpr:")), "")
    if not fingerprint:
        raise InfraError(f"gpg made no key: {listing[-300:]}")
    armored = proc.run(["gpg", "--batch", "--armor", "--export", fingerprint], timeout=60,
                       env=env).stdout
    (work / KEY_FILE).write_bytes(armored)
    top = work / "rpmbuild"
    for sub in ("SOURCES", "SPECS", "BUILD", "RPMS", "SRPMS", "BUILDROOT"):
        (top / sub).mkdir(parents=True)
    repo = work / "repo"
    (repo / "packages").mkdir(parents=True)
    defines = ["--define", f"_topdir {top}", "--define", "_binary_payload w0.ufdio",
               "--define", "_build_id_links none", "--define", "__os_install_post %{nil}",
               "--define", "_buildhost distrogate"]
    files: dict[str, int] = {}
    for package in PACKAGES:
        (top / "SOURCES" / f"{package.name}.bin").write_bytes(payload(package))
        spec = top / "SPECS" / f"{package.name}.spec"
        spec.write_text(spec_text(package))
        proc.run(["rpmbuild", *defines, "-bb", spec], timeout=300, env=env)
        built = top / "RPMS" / "noarch" / f"{package.name}-{VERSION}-{RELEASE}.noarch.rpm"
        target = repo / "packages" / built.name
        built.rename(target)
        proc.run(["rpmsign", "--define", f"_gpg_name {fingerprint}",
                  "--define", f"_gpg_path {gnupg}", "--define", "_gpg_digest_algo sha256",
                  "--define", f"__gpg {shutil.which('gpg') or '/usr/bin/gpg'}",
                  "--addsign", target], timeout=120, env=env)
        files[f"packages/{target.name}"] = target.stat().st_size
    proc.run(["createrepo_c", "--no-database", "--simple-md-filenames", repo], timeout=300,
             env=env)
    shutil.rmtree(top)
    shutil.rmtree(gnupg, ignore_errors=True)  # the private key goes with the build
    manifest: RepoManifest = {"kind": REPO_KIND, "packages": [asdict(p) for p in PACKAGES],
                              "files": files, "key_fingerprint": fingerprint, "tools": tools,
                              "built_at": now_utc()}
    write_manifest(work, dict(manifest))
    log.info("built the DNF suite's repository: %d packages, key %s", len(PACKAGES),
             fingerprint[-16:])
