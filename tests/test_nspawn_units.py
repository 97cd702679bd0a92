"""Unit tests for the pure parts of distrogate.nspawn (no VM): specs, sizes, settings, the
write probe (run for real in a private mount namespace), the ext4 packer, comparison."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from distrogate import proc
from distrogate.differential import DeltaStatus
from distrogate.errors import InputError
from distrogate.nspawn.checks import Bounds, CheckResult, Got, readonly_probe, tty_output_matches
from distrogate.nspawn.compare import delta_of, deltas
from distrogate.nspawn.install import install_script, mount_unit, nspawn_settings
from distrogate.nspawn.suite import SuiteConfig
from distrogate.nspawn.tree import ContainerSpec, Volume, ext4_size, make_ext4

ROOT = os.geteuid() == 0


# -- container spec

def test_spec_digest_is_stable_and_follows_content() -> None:
    a, b = ContainerSpec(), ContainerSpec()
    assert a.digest == b.digest
    assert len(a.machine_id) == 32 and a.digest.startswith(a.machine_id)
    more = ContainerSpec(packages=(*a.packages, "procps"))
    assert more.digest != a.digest
    reordered = ContainerSpec(packages=tuple(reversed(a.packages)))
    assert reordered.digest == a.digest
    assert ContainerSpec(release="trixie").digest != a.digest


@pytest.mark.parametrize("kwargs, message", [
    ({"release": "buster"}, "release"),
    ({"machine": "Bad_Name"}, "machine name"),
    ({"machine": "9lives"}, "machine name"),
    ({"packages": ("systemd", "postgresql")}, "dbus"),
    ({"packages": ("systemd", "dbus", "not a package")}, "package"),
    ({"volumes": (Volume("a", "/x"), Volume("b", "/x"))}, "unique"),
    ({"volumes": (Volume("a", "relative"),)}, "absolute"),
    ({"volumes": (Volume("a", "/"),)}, "absolute"),
])
def test_spec_rejects(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        ContainerSpec(**kwargs)  # type: ignore[arg-type]


def test_spec_from_config_adds_packages_and_rejects_unknown_keys() -> None:
    spec = ContainerSpec.from_config({"container": {"machine": "db1", "packages": ["procps"]}})
    assert spec.machine == "db1"
    assert "procps" in spec.packages and "postgresql" in spec.packages
    assert ContainerSpec.from_config({}) == ContainerSpec()
    with pytest.raises(InputError, match="unknown key 'volumes'"):
        ContainerSpec.from_config({"container": {"volumes": []}})


def test_suite_config_and_bounds() -> None:
    config = SuiteConfig.from_mapping({"start_timeout_s": 45, "checks": ["start", "poweroff"]})
    assert config.bounds.start == 45.0 and config.bounds.poweroff == Bounds().poweroff
    assert config.checks == ("start", "poweroff")
    with pytest.raises(ValueError, match="unknown key 'start_timeout'"):
        SuiteConfig.from_mapping({"start_timeout": 45})
    for bad in (0, -1, True, "60"):
        with pytest.raises(ValueError, match="positive number"):
            Bounds.from_config({"poweroff_timeout_s": bad})


# -- sizes and the ext4 packer

@pytest.mark.parametrize("content", [0, 1, 4 << 20, 450 << 20, (3 << 30) + 7])
def test_ext4_size_has_room_and_alignment(content: int) -> None:
    size = ext4_size(content)
    assert size % (4 << 20) == 0
    assert size >= content * 5 // 4 + (64 << 20)
    assert size - (content * 5 // 4 + (64 << 20)) < 4 << 20
    with pytest.raises(ValueError):
        ext4_size(-1)


@pytest.mark.skipif(not ROOT or shutil.which("debugfs") is None, reason="needs root and debugfs")
def test_make_ext4_keeps_content_owners_and_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/postgresql").mkdir(parents=True)
    (root / "etc/postgresql/conf").write_text("listen_addresses = ''\n")
    os.chown(root / "etc/postgresql/conf", 101, 104)
    (root / "etc/link").symlink_to("postgresql/conf")
    image = tmp_path / "tree.ext4"
    size = make_ext4(root, image, label="dg-test", fs_uuid="12345678-1234-1234-1234-123456789abc")
    assert image.stat().st_size == size
    assert image.stat().st_blocks * 512 < size  # sparse
    cat = proc.run(["debugfs", "-R", "cat /etc/postgresql/conf", image], timeout=30)
    assert cat.text == "listen_addresses = ''\n"
    stat = proc.run(["debugfs", "-R", "stat /etc/postgresql/conf", image], timeout=30).text
    assert "User:   101" in stat and "Group:   104" in stat
    link = proc.run(["debugfs", "-R", "stat /etc/link", image], timeout=30).text
    assert 'Fast link dest: "postgresql/conf"' in link
    features = proc.run(["dumpe2fs", "-h", image], timeout=30).text
    assert "has_journal" not in features and "dg-test" in features


# -- what the guest is told to do

def test_nspawn_settings_lock_the_container_down() -> None:
    spec = ContainerSpec(machine="db1")
    text = nspawn_settings(spec)
    lines = text.splitlines()
    for wanted in ("Boot=yes", "PrivateUsers=no", "ReadOnly=yes", "Private=yes",
                   "VirtualEthernet=no", "Bind=/srv/db1/data:/var/lib/postgresql",
                   "Bind=/srv/db1/config:/etc/postgresql", "Bind=/srv/db1/log:/var/log"):
        assert wanted in lines, wanted
    # each key sits in its own section
    assert lines.index("[Files]") < lines.index("ReadOnly=yes") < lines.index("[Network]")


def test_install_script_is_valid_shell_and_installs_where_told() -> None:
    script = install_script(ContainerSpec(machine="db1"), serial="ser1")
    subprocess.run(["sh", "-n"], input=script.encode(), check=True, timeout=10)
    assert "/dev/disk/by-id/virtio-ser1" in script
    assert "cp -a \"$src\" /var/lib/machines/db1" in script
    assert "cp -a \"$src\"/var/lib/postgresql /srv/db1/data" in script
    assert script.rstrip().endswith("DISTROGATE_EOF")


def test_install_script_mount_mode_mounts_the_disk_persistently_and_seeds_the_volumes() -> None:
    spec = ContainerSpec(machine="db-1")
    script = install_script(spec, serial="ser1", copy=False)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True, timeout=10)
    assert mount_unit(spec) == "var-lib-machines-db\\x2d1.mount"
    assert "What=/dev/disk/by-id/virtio-ser1\nWhere=/var/lib/machines/db-1\n" in script
    assert "Options=ro\n" in script
    assert "systemctl enable --now 'var-lib-machines-db\\x2d1.mount'" in script
    assert "src=/var/lib/machines/db-1" in script
    assert "cp -a \"$src\"/var/lib/postgresql /srv/db-1/data" in script
    assert "cp -a \"$src\" " not in script  # no copy of the whole tree
    assert "trap" not in script  # the mount stays
    # the copy mode removes a mount mode's unit and mount first
    copy = install_script(spec, serial="ser1")
    assert "disable --now 'var-lib-machines-db\\x2d1.mount'" in copy
    assert copy.index("umount /var/lib/machines/db-1") < copy.index("rm -rf /var/lib/machines/db-1")


@pytest.mark.skipif(not ROOT, reason="needs root (a read-only bind mount)")
def test_readonly_probe_tells_writable_from_read_only(tmp_path: Path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    script, expected = readonly_probe([str(rw)], [str(ro)])
    setup = (f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
             f"exec sh -c '{script}'" if "'" not in script else "false")
    result = proc.run(["unshare", "--mount", "--", "sh", "-c", setup], timeout=30)
    assert result.text == expected
    assert expected == f"{ro} ro\n{rw} rw\n"
    assert not list(rw.iterdir())  # the probe cleans up after itself
    # and with both writable the probe says so (the expectation would then not be met)
    both = proc.run(["sh", "-c", script], timeout=30).text
    assert both == f"{ro} rw\n{rw} rw\n" != expected


# -- comparison

def _result(check: str, ok: bool) -> CheckResult:
    return CheckResult(check, f"machinectl {check} box", ok, "exit 0",
                       Got(0 if ok else 1, "", "" if ok else "Access denied"), 0.1,
                       "" if ok else "machinectl failed")


@pytest.mark.parametrize("cand, base, status", [
    (True, True, DeltaStatus.UNCHANGED),
    (False, True, DeltaStatus.REGRESSION),
    (False, False, DeltaStatus.ALSO_FAILS_ON_BASELINE),
    (True, False, DeltaStatus.FIXED),
])
def test_a_check_is_judged_by_its_expectation_on_both_images(cand: bool, base: bool,
                                                             status: DeltaStatus) -> None:
    delta = delta_of(_result("shell", cand), _result("shell", base))
    assert delta.status is status and delta.rule == "exact"
    assert delta.candidate is not None and delta.baseline is not None
    assert delta.candidate.to_dict()["value"]["passed"] is cand  # both sides observed


def _timed_out(check: str) -> CheckResult:
    return CheckResult(check, f"machinectl {check} box", False, "active within 120s",
                       Got(0, "activating", ""), 120.0, "not reached within 120s")


def _took(check: str, seconds: float) -> CheckResult:
    return CheckResult(check, f"machinectl {check} box", True, "active", Got(0, "active"),
                       seconds)


def test_a_bound_is_judged_against_the_baselines_time_on_the_same_lab() -> None:
    def status(cand: CheckResult, base: CheckResult, bound: float | None = 120) -> DeltaStatus:
        return delta_of(cand, base, bound).status

    # the baseline took 10 s of a 120 s bound: the candidate running out is a regression
    assert status(_timed_out("service"), _took("service", 10)) is DeltaStatus.REGRESSION
    assert delta_of(_timed_out("service"), _took("service", 10), 120).rule == "bound"
    # the baseline itself needed 100 s of 120 s: the lab is too slow to tell (an error)
    assert status(_timed_out("service"), _took("service", 100)) is DeltaStatus.INCONCLUSIVE
    # both ran out: an existing failure, not a regression
    assert status(_timed_out("service"), _timed_out("service")) \
        is DeltaStatus.ALSO_FAILS_ON_BASELINE
    # a definite failure (not a timeout) is judged as pass/fail
    assert status(_result("shell", False), _took("shell", 100)) is DeltaStatus.REGRESSION


def test_deltas_pair_checks_by_name_and_say_what_changed() -> None:
    cand = [_result("start", True), _result("shell", False), _result("poweroff", False)]
    base = [_result("poweroff", False), _result("shell", True)]
    base.append(_result("start", True))
    found = deltas(cand, base)
    assert [(d.id, d.status) for d in found] == [
        ("start", DeltaStatus.UNCHANGED), ("shell", DeltaStatus.REGRESSION),
        ("poweroff", DeltaStatus.ALSO_FAILS_ON_BASELINE)]
    assert found[1].title == "machinectl shell box"
    assert found[1].detail.startswith("expected exit 0; the candidate gave ")
    assert "Access denied" in found[1].detail and "the baseline gives it" in found[1].detail
    assert "the baseline" in found[2].detail and "too" in found[2].detail
    assert delta_of(_result("x", False), None).status is DeltaStatus.INCONCLUSIVE
    assert delta_of(_result("x", True), None).status is DeltaStatus.UNCHANGED
    with pytest.raises(ValueError):
        deltas(cand, [_result("shell", True), _result("shell", True)])


# -- terminal output --------------------------------------------------------------------

@pytest.mark.parametrize("got, expected, ok", [
    ("alpha\r\ntwo  words\r\nno-newline\n", "alpha\ntwo  words\nno-newline", True),  # 252
    ("alpha\ntwo  words\nno-newline", "alpha\ntwo  words\nno-newline", True),
    ("before\r\n", "before\n", True),
    ("before\r\n\n", "before\n", False),  # an extra line is not the command's output
    ("\n", "before\n", False),  # the session ended before the command printed
    ("", "x", False),
    ("alpha\r\ntwo words\r\n", "alpha\ntwo  words\n", False),  # one space lost
    ("tab\there\r\n", "tab here\n", False),
    ("value\n", "value", True),
    ("value\n\n", "value", False),
])
def test_tty_output_matches(got: str, expected: str, ok: bool) -> None:
    assert tty_output_matches(got, expected) is ok
