"""OpenMux over QUIC with aioquic (`quic://host:4433`), OPENMUX.md §3.

(Work in progress: the certificate helper comes first.)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

DEFAULT_PORT = 4433


def self_signed_certificate(
    hosts: Sequence[str] = ("127.0.0.1", "localhost"), days: int = 7
) -> tuple[bytes, bytes]:
    """`(certificate_pem, private_key_pem)` of a fresh self-signed ECDSA certificate.

    QUIC has no plaintext mode, so tests, benchmarks and a daemon's first run
    need a certificate nobody issued; `hosts` become subjectAltNames so that a
    client given this certificate as its CA verifies the name it dialled.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "openmux")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def write_self_signed_certificate(
    directory: str | os.PathLike[str], hosts: Sequence[str] = ("127.0.0.1", "localhost")
) -> tuple[str, str]:
    """Write `cert.pem` and `key.pem` (mode 0600) into `directory`; returns their paths."""
    cert_pem, key_pem = self_signed_certificate(hosts)
    certfile = os.path.join(directory, "cert.pem")
    keyfile = os.path.join(directory, "key.pem")
    with open(certfile, "wb") as fp:
        fp.write(cert_pem)
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fp:
        fp.write(key_pem)
    return certfile, keyfile


ALPN = ("openmux/0.1", "xumux/0.1")
MAX_DATAGRAM_FRAME_SIZE = 65536


def quic_configuration(
    *, is_client: bool, alpn: Sequence[str] = ALPN, datagrams: bool = True
) -> QuicConfiguration:
    """The aioquic settings OpenMux uses (also used by the bare benchmark)."""
    from aioquic.quic.configuration import QuicConfiguration

    return QuicConfiguration(
        is_client=is_client,
        alpn_protocols=list(alpn),
        max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE if datagrams else None,
    )


def stream_buffered(quic: QuicConnection, stream_id: int) -> int:
    """Bytes written to a stream and not yet acknowledged by the peer."""
    stream = quic._streams.get(stream_id)
    if stream is None:
        return 0
    return len(stream.sender._buffer)
