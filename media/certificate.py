"""A DTLS certificate that FFmpeg and OBS can publish with.

FFmpeg's WHIP muxer makes its own certificate on curve P-224, which the
OpenSSL inside `cryptography` refuses; given an ECDSA P-256 `cert_file` /
`key_file` the handshake works. This module writes such a pair.
Must not import aiortc, aiohttp or `server/`.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class CertPair:
    cert_file: Path
    key_file: Path


def write_p256_pair(out_dir: Path, days: int = 365, name: str = "whip") -> CertPair:
    """Self-signed ECDSA P-256 certificate and key (PEM), key mode 0600."""
    out_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "droproom-publisher")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pair = CertPair(out_dir / f"{name}.crt", out_dir / f"{name}.key")
    pair.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(pair.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    return pair
