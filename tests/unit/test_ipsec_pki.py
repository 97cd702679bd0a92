"""The suite's throwaway CA, made with the host's openssl (a real one, no mock)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

from distrogate.ipsec.pki import CA_NAME, issue


def test_a_node_certificate_names_its_address_and_verifies(tmp_path: Path) -> None:
    cert = issue(tmp_path, "cc1", [ipaddress.IPv6Address("fd00:1::2")])
    text = subprocess.run(["openssl", "x509", "-in", cert.cert, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "IP Address:FD00:1:0:0:0:0:0:2" in text.upper().replace("IP ADDRESS", "IP Address")
    assert f"Issuer: CN = {CA_NAME}" in text
    verify = subprocess.run(["openssl", "verify", "-CAfile", cert.ca, cert.cert],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    second = issue(tmp_path, "cc2", [ipaddress.IPv6Address("fd00:1::3")])
    assert second.ca == cert.ca  # one CA per run
    assert b"PRIVATE KEY" in cert.key.read_bytes()


def test_certificates_issued_at_the_same_time_all_verify_with_distinct_serials(
        tmp_path: Path) -> None:
    # The pairs of a run issue their certificates concurrently from one CA (the race CI
    # hit with a shared serial file: "Unable to load number from ca.srl").
    from concurrent.futures import ThreadPoolExecutor

    from distrogate.ipsec.pki import make_ca
    make_ca(tmp_path)
    with ThreadPoolExecutor(max_workers=6) as pool:
        certs = list(pool.map(
            lambda i: issue(tmp_path, f"node{i}", [ipaddress.IPv6Address(f"fd00:1::{i + 2}")]),
            range(6)))
    serials = set()
    for cert in certs:
        verify = subprocess.run(["openssl", "verify", "-CAfile", cert.ca, cert.cert],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stderr
        serials.add(subprocess.run(["openssl", "x509", "-in", cert.cert, "-noout", "-serial"],
                                   capture_output=True, text=True, check=True).stdout)
    assert len(serials) == len(certs)
