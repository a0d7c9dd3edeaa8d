"""The sandbox's own certificate authority.

The certificate faults (expired, about to expire, wrong host name, removed) need
certificates made on demand, signed by a CA that the probes and the load trust through
a bundle (``ca.pem``) -- so a *valid* certificate verifies for real and a broken one
fails verification for the real reason, not because the issuer is unknown.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.base import CertificateInfo

VARIANTS = ("valid", "expired", "expiring", "wrong-host")
CA_SUBJECT = "ledgerdrill sandbox CA"
CA_LIFETIME = dt.timedelta(days=3650)


# a CA signs certificates (and CRLs), nothing else
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _validity(variant: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    if variant == "expired":
        return now - 30 * day, now - day
    if variant == "expiring":
        return now - hour, now + 3 * day
    return now - hour, now + 90 * day  # valid, wrong-host


def _sans(variant: str) -> list[x509.GeneralName]:
    if variant == "wrong-host":
        return [x509.DNSName("other.example")]
    return [
        x509.DNSName("localhost"),
        x509.DNSName("*.localhost"),
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
    ]


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _staged(path: Path, data: bytes, mode: int) -> str:
    """A temp file beside ``path`` holding ``data`` (durable), ready for ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # before any byte is written: a key is never world-readable
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so a reader (Traefik's file watcher) never sees half of it."""
    os.replace(_staged(path, data, mode), path)


def write_pair(cert_path: Path, key_path: Path, cert_pem: bytes, key_pem: bytes) -> None:
    """Replace a certificate and its key together: both are staged first and swapped in
    back to back, so a watcher (which batches changes for ~100 ms) does not load a
    certificate with the other one's key."""
    staged_key = _staged(key_path, key_pem, 0o600)
    try:
        staged_cert = _staged(cert_path, cert_pem, 0o644)
    except BaseException:
        os.unlink(staged_key)
        raise
    os.replace(staged_key, key_path)
    os.replace(staged_cert, cert_path)


@dataclass(frozen=True)
class CertDetails:
    """What a certificate says about itself, read from its bytes."""

    subject: str
    issuer: str
    fingerprint_sha256: str
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime  # aware, UTC
    dns_names: tuple[str, ...]

    @property
    def expired(self) -> bool:
        return self.not_after <= _utcnow()

    def info(self, variant: str = "valid") -> CertificateInfo:
        return CertificateInfo(
            subject=self.subject,
            not_after_iso=self.not_after.isoformat(),
            fingerprint_sha256=self.fingerprint_sha256,
            variant=variant,
        )


def _load(cert: bytes) -> x509.Certificate:
    try:
        if cert.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(cert)
        return x509.load_der_x509_certificate(cert)
    except ValueError as exc:
        raise PlatformError(f"not a certificate: {exc}") from exc


def describe(cert: bytes) -> CertDetails:
    """Details of a PEM or DER certificate."""
    parsed = _load(cert)
    try:
        san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertDetails(
        subject=parsed.subject.rfc4514_string(),
        issuer=parsed.issuer.rfc4514_string(),
        fingerprint_sha256=parsed.fingerprint(hashes.SHA256()).hex(),
        not_before=parsed.not_valid_before_utc,
        not_after=parsed.not_valid_after_utc,
        dns_names=names,
    )


class SandboxCA:
    """A CA kept in ``folder``: ``ca.pem`` (the bundle clients trust) and ``ca.key``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cert_path = folder / "ca.pem"
        self.key_path = folder / "ca.key"
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._cert: x509.Certificate | None = None

    def ensure(self) -> Path:
        """Create the CA once (later calls, and later runs, reuse it); returns ``ca.pem``."""
        if self._cert is not None:
            return self.cert_path
        if self.cert_path.exists() and self.key_path.exists():
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise PlatformError(f"{self.key_path} is not an EC key")
            self._key = key
            self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            return self.cert_path
        self.folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_SUBJECT)])
        now = _utcnow()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        write_pair(self.cert_path, self.key_path, cert_pem, _pem_key(key))
        self._key, self._cert = key, cert
        return self.cert_path

    def issue(self, variant: str = "valid") -> tuple[bytes, bytes]:
        """A fresh server certificate and key (PEM) for ``variant``: valid, expired,
        expiring (3 days left) or wrong-host (names only other.example)."""
        if variant not in VARIANTS:
            raise PlatformError(f"unknown certificate variant {variant!r} (one of {VARIANTS})")
        self.ensure()
        assert self._key is not None
        assert self._cert is not None
        key = ec.generate_private_key(ec.SECP256R1())
        not_before, not_after = _validity(variant, _utcnow())
        common_name = "other.example" if variant == "wrong-host" else "localhost"
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ledgerdrill sandbox"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        ca_ski = self._cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(_sans(variant)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)
