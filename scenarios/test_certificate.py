"""Certificates on the entry point: expired, then missing (the default certificate is
served); recovery is rotation to a new valid certificate. The original comes back at
the end, so the platform is left as it was found."""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import CertificateExpiry, CertificateRemoval
from ledgerdrill.faults.base import Fault
from ledgerdrill.platforms.base import CertificateControl, Platform

FAULTS: dict[str, type[Fault]] = {"expired": CertificateExpiry, "removed": CertificateRemoval}


@pytest.mark.tier("portals")
@pytest.mark.loadprofile("steady")
@pytest.mark.requires("CertificateControl")
@pytest.mark.parametrize("variant", sorted(FAULTS))
def test_certificate(drill: Drill, platform: Platform, variant: str) -> None:
    drill.steady_state()
    with drill.inject(FAULTS[variant](platform)):
        drill.wait_for_detection()
        with drill.runbook_step("rotate to a new valid certificate"):
            if not drill.dry_run:
                certificates = platform.capability(CertificateControl)
                rotated_at = drill.timeline.clock.now()
                certificates.install_certificate("valid")
                new = certificates.served_certificate().fingerprint_sha256
        drill.wait_for_recovery()
        drill.observe()
        if not drill.dry_run:
            # rotation -> clients: the first TLS sample after the rotation that shows it
            seen = [s for s in drill.timeline.samples(start=rotated_at)
                    if s.ok and new in s.detail]  # fmt: skip
            drill.timeline.event(
                "certificate.rotation-seen", new[:16],
                seconds=round(seen[0].at.plus(seen[0].latency_s).seconds_since(rotated_at), 3)
                if seen else None,
            )  # fmt: skip
