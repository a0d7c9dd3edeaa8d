"""Certificate faults on the entry point: expired, or none at all (the server falls
back to its default certificate). Revert restores the exact files that were served."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import CertificateControl, Platform
from ledgerdrill.target_kinds import TargetKind


class _CertificateFault(Fault):
    capability = CertificateControl
    variant: str

    def __init__(self, platform: Platform, entry_point: str = "entry") -> None:
        super().__init__(platform)
        self.entry_point = entry_point
        self.certs = platform.capability(CertificateControl)
        self.backup_ref: str | None = None

    def prepare(self) -> None:
        self.backup_ref = self.certs.backup_certificate()

    def undo_state(self) -> JSONParams:
        return {"backup_ref": self.backup_ref}

    def restore_undo_state(self, state: Mapping[str, Any]) -> None:
        self.backup_ref = state.get("backup_ref")

    def targets(self) -> Sequence[TargetRef]:
        return [TargetRef(TargetKind.CERTIFICATE, self.entry_point)]

    def params(self) -> JSONParams:
        return {"entry_point": self.entry_point}

    def inject(self) -> None:
        self.certs.install_certificate(self.variant)

    def verify(self) -> Evidence:
        served = self.certs.served_certificate()  # read from the wire, not from our files
        if served.variant != self.variant:
            raise FaultError(
                f"{self.entry_point} serves a {served.variant} certificate, expected {self.variant}"
            )
        return Evidence(
            f"{self.entry_point} serves a {served.variant} certificate ({served.subject}, "
            f"not after {served.not_after_iso})",
            {"fingerprint_sha256": served.fingerprint_sha256},
        )

    def revert(self) -> None:
        if self.backup_ref is not None:
            self.certs.restore_certificate(self.backup_ref)


@register_fault
class CertificateExpiry(_CertificateFault):
    kind = "certificate-expiry"
    variant = "expired"

    def describe(self) -> str:
        return f"serve an expired certificate on {self.entry_point}"


@register_fault
class CertificateRemoval(_CertificateFault):
    kind = "certificate-removal"
    variant = "none"

    def describe(self) -> str:
        return f"remove the certificate of {self.entry_point} (its default certificate is served)"
