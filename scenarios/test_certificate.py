"""Certificates on the entry point: expired, then missing (the default certificate is
served); recovery is rotation to a new valid certificate. The original comes back at
the end, so the platform is left as it was found."""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import CertificateExpiry, CertificateRemoval
from ledgerdrill.faults.base import Fault
from ledgerdrill.platforms.base import Platform
from ledgerdrill.runbook import CertificateRotation

FAULTS: dict[str, type[Fault]] = {"expired": CertificateExpiry, "removed": CertificateRemoval}


@pytest.mark.tier("portals")
@pytest.mark.loadprofile("steady")
@pytest.mark.requires("CertificateControl")
@pytest.mark.parametrize("variant", sorted(FAULTS))
def test_certificate(drill: Drill, platform: Platform, variant: str) -> None:
    drill.steady_state()
    with drill.inject(FAULTS[variant](platform)):
        drill.wait_for_detection()
        # its report says when clients first saw the new certificate
        drill.runbook(CertificateRotation(platform))
        drill.wait_for_recovery()
        drill.observe()
