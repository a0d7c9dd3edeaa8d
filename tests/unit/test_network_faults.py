"""The network faults' own honesty: a link that did not change is caught by the round
trips, a revert that does not read back as before is said out loud, and a loss fault
measures enough round trips not to miss its own loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerdrill.errors import FaultError
from ledgerdrill.faults import NetworkLatency, NetworkLoss, NetworkPartition, fault_from_record
from ledgerdrill.platforms.base import LinkState
from ledgerdrill.platforms.fake import FakePlatform


class DeafLinks(FakePlatform):
    """Takes every change and does nothing: a fault here must not claim success."""

    def set_link(self, state: LinkState) -> None:
        return None


class StuckLinks(FakePlatform):
    """Applies a change once and never again: a revert here cannot restore the link."""

    def set_link(self, state: LinkState) -> None:
        if "stuck" not in self.__dict__:
            self.__dict__["stuck"] = True
            super().set_link(state)


def fake(tmp_path: Path, cls: type[FakePlatform] = FakePlatform) -> FakePlatform:
    return cls("fake", tmp_path / "state.json", {"node-a": "a"})


@pytest.mark.parametrize(
    "make",
    [
        lambda p: NetworkLatency(p, "erp>db-a", 25),
        lambda p: NetworkLoss(p, "erp>db-a", 20),
        lambda p: NetworkPartition(p, "db-b>db-a"),
    ],
)
def test_a_link_that_did_not_change_fails_verify(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    fault = make(fake(tmp_path, DeafLinks))
    fault.prepare()
    fault.inject()
    with pytest.raises(FaultError):
        fault.verify()


def test_the_evidence_is_the_measured_round_trip_against_the_one_before(tmp_path: Path) -> None:
    platform = fake(tmp_path)
    fault = NetworkLatency(platform, "erp>db-a", 25)
    fault.prepare()
    fault.inject()
    evidence = fault.verify()
    assert evidence.details["round_trip_ms"] == pytest.approx(50.3)
    assert evidence.details["baseline_ms"] == pytest.approx(0.3)
    fault.revert()
    assert platform.link_state("erp>db-a") == LinkState("erp>db-a")


def test_a_revert_that_does_not_read_back_says_so(tmp_path: Path) -> None:
    fault = NetworkPartition(fake(tmp_path, StuckLinks), "db-b>db-a")
    fault.prepare()
    fault.inject()
    fault.verify()
    with pytest.raises(FaultError, match=r"link db-b>db-a not restored: .*cut=True"):
        fault.revert()


def test_a_fault_on_a_link_that_does_not_exist_is_refused_before_anything(
    tmp_path: Path,
) -> None:
    platform = fake(tmp_path)
    with pytest.raises(FaultError, match=r"no link 'erp>db-x' .*links: erp>db-a, db-b>db-a"):
        NetworkLatency(platform, "erp>db-x", 10).prepare()


def test_the_revert_puts_back_the_shape_found_not_a_clean_link(tmp_path: Path) -> None:
    platform = fake(tmp_path)
    wan = LinkState("db-b>db-a", latency_ms=10)  # a WAN already on the link
    platform.set_link(wan)
    fault = NetworkLatency(platform, "db-b>db-a", 30)
    fault.prepare()
    record = fault.undo_record()
    fault.inject()
    assert platform.link_state("db-b>db-a").latency_ms == 40
    # as cleanup would, from the journal record alone
    fault_from_record(platform, record).revert()
    assert platform.link_state("db-b>db-a") == wan


@pytest.mark.parametrize(("loss", "enough"), [(50, 5), (10, 33), (1, 344), (100, 1)])
def test_loss_measures_enough_round_trips_to_see_itself(loss: float, enough: int) -> None:
    fault = NetworkLoss.__new__(NetworkLoss)
    fault.loss_percent = loss
    assert fault.round_trips_needed() == enough
    # the chance that none of them (two segments each) was lost is below one in a thousand
    assert (1 - loss / 100) ** (2 * enough) <= 0.001
