"""Cache loss: the session store dies; users must log in again, no ledger data is lost."""

from __future__ import annotations

import pytest

from ledgerdrill.drill import Drill
from ledgerdrill.faults import CacheLoss
from ledgerdrill.platforms.base import Platform


@pytest.mark.tier("portals")
@pytest.mark.loadprofile("post-recovery-surge")
@pytest.mark.requires("CacheControl")
def test_cache_loss(drill: Drill, platform: Platform) -> None:
    drill.steady_state()
    with drill.inject(CacheLoss(platform)):
        drill.wait_for_recovery()
        drill.observe()
