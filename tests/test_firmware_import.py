"""External images: a locally built image, imported as a plain qcow2 file, boots through UEFI
firmware and cloud-init and answers the agent; the file is never written."""

from __future__ import annotations

import pytest

from distrogate.fsutil import sha256_file
from distrogate.images.artifact import BootMode, ImageArtifact
from distrogate.images.intake import import_image, verify_unchanged
from distrogate.lab.run import LabRun
from distrogate.lab.seed import SEED_MARKER

pytestmark = pytest.mark.vm


def test_imported_qcow2_boots_through_firmware_and_cloud_init(
        lab_run: LabRun, baseline_image: ImageArtifact) -> None:
    before = sha256_file(baseline_image.disk)
    imported = import_image(baseline_image.disk, name="imported-promoted")
    assert imported.boot is BootMode.FIRMWARE
    assert imported.digest == before
    machine = lab_run.boot(imported, role="firmware", timeout=400)
    try:
        machine.wait_until_succeeds(f"test -s {SEED_MARKER}", timeout=180)
        # cloud-init wrote the marker from this VM's own seed (it names the VM)
        assert machine.succeed(f"cat {SEED_MARKER}").strip() == machine.name
        assert machine.succeed("cloud-init status --wait", timeout=300).strip().endswith("done")
        assert "efi" in machine.succeed("ls /sys/firmware"), "did not boot through UEFI"
        machine.handle.agent().command("guest-ping")
    finally:
        lab_run.destroy(machine)
    verify_unchanged(imported)
    assert sha256_file(baseline_image.disk) == before


def test_built_images_are_unchanged_by_use(lab_run: LabRun, candidate_image: ImageArtifact,
                                           baseline_image: ImageArtifact) -> None:
    for image in (candidate_image, baseline_image):
        machine = lab_run.boot(image, role="writer")
        machine.succeed("head -c 50000000 /dev/urandom > /root/noise && sync", timeout=300)
        lab_run.destroy(machine)
        verify_unchanged(image)
