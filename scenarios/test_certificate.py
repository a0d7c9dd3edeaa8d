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
@pytest.mark.requires("CertificateControl")
@pytest.mark.parametrize("variant", sorted(FAULTS))
def test_certificate(drill: Drill, platform: Platform, variant: str) -> None:
    drill.steady_state()
    with drill.inject(FAULTS[variant](platform)):
        drill.wait_for_detection()
        with drill.runbook_step("rotate to a new valid certificate"):
            if not drill.dry_run:
                platform.capability(CertificateControl).install_certificate("valid")
        drill.wait_for_recovery()
        drill.observe()
