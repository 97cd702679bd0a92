"""A throwaway X.509 CA for the suite, made with openssl on the host (never in the guest):
one CA, and per node a key and a certificate whose subject alternative name is the node's
address (the IKE identity the configuration uses)."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from distrogate import proc

OPENSSL_TIMEOUT = 60.0
CA_NAME = "distrogate-ipsec-ca"


@dataclass(frozen=True)
class NodeCert:
    """A node's key and certificate (PEM files on the host) and the CA's certificate."""

    key: Path
    cert: Path
    ca: Path


def make_ca(directory: Path) -> tuple[Path, Path]:
    """Create the CA's key and self-signed certificate in ``directory``; (key, cert)."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "ca.key", directory / "ca.pem"
    if not cert.exists():
        proc.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                  "-out", cert, "-days", "30", "-subj", f"/CN={CA_NAME}",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"], timeout=OPENSSL_TIMEOUT)
    return key, cert


def issue(directory: Path, name: str,
          addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> NodeCert:
    """A key and a certificate for node ``name`` with its ``addresses`` as IP SANs, signed by
    the CA in ``directory`` (made first if need be)."""
    sans = ",".join(f"IP:{a}" for a in addresses)
    key, cert, ca_cert = issue_signed(directory, name, name, sans, "digitalSignature")
    return NodeCert(key, cert, ca_cert)


def issue_signed(directory: Path, name: str, common_name: str, sans: str,
          key_usage: str = "digitalSignature") -> tuple[Path, Path, Path]:
    """A key and a certificate ``<name>.key`` / ``<name>.pem`` with ``common_name`` and the
    subject alternative names ``sans`` (``IP:…``, ``DNS:…``), for server and client use,
    signed by the CA in ``directory`` (made first if need be); (key, cert, CA cert)."""
    ca_key, ca_cert = make_ca(directory)
    key, csr, cert = (directory / f"{name}.key", directory / f"{name}.csr",
                      directory / f"{name}.pem")
    ext = directory / f"{name}.ext"
    ext.write_text(f"subjectAltName={sans}\nkeyUsage=critical,{key_usage}\n"
                   "extendedKeyUsage=serverAuth,clientAuth\n")
    proc.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
              "-subj", f"/CN={common_name}"], timeout=OPENSSL_TIMEOUT)
    # A random serial per certificate, not the CA's serial file: pairs issue their
    # certificates at the same time, and two ``openssl x509 -CAcreateserial`` on one
    # ``ca.srl`` race (one reads it half-written: "Unable to load number from ca.srl").
    proc.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
              "-set_serial", f"0x{random_serial():x}", "-out", cert, "-days", "30",
              "-extfile", ext], timeout=OPENSSL_TIMEOUT)
    return key, cert, ca_cert


def random_serial() -> int:
    """A positive serial number of 127 random bits (RFC 5280 allows up to 20 octets), so
    that certificates issued concurrently by one CA never share one."""
    return secrets.randbits(127) | 1 << 126
