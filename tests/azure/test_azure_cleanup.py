"""``ledgerdrill cleanup`` after a killed run, on the composed AKS target: the fault is
rebuilt from its journal record on a platform built from the target file (as a new
process builds it) and reverted through the one-call zone path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aks_fakes import AksEstate, aks_estate, node_name

from ledgerdrill.cleanup import cleanup
from ledgerdrill.faults import ZoneOutage
from ledgerdrill.platforms.azure import clients
from ledgerdrill.platforms.base import NodeState
from ledgerdrill.safety.journal import FaultJournal
from ledgerdrill.testing.fake_arm import FakeArmServer


@pytest.fixture
def estate(arm_server: FakeArmServer, tmp_path: Path) -> Iterator[AksEstate]:
    with aks_estate(arm_server, tmp_path) as found:
        yield found


def test_cleanup_reverts_a_zone_outage_left_by_a_killed_run(
    estate: AksEstate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = estate.target()
    target_file = tmp_path / "aks.yaml"
    data = target.model_dump(mode="json", exclude={"source"}, exclude_none=True)
    target_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    # the platform cleanup builds from the journal's target file talks to the fake
    monkeypatch.setattr(clients._Injected, "arm", None)  # so the test's end undoes it
    clients.use_arm(estate.arm_server.override())
    state_dir = tmp_path / "state"

    run = estate.platform()  # the run that will be "killed" after the inject
    fault = ZoneOutage(run, "westeurope-2")
    fault.prepare()
    FaultJournal(state_dir).intent(
        fault.undo_record(), target=target.name, target_file=target_file, platform="azure"
    )
    fault.inject()
    down = [node_name("aks-erp-12345678-vmss", "1"), node_name("aks-system-12345678-vmss", "1")]
    assert {run.node_state(n) for n in down} == {NodeState.STOPPED}
    run.close()  # SIGKILL: nothing reverted

    results = cleanup(state_dir, force=True, say=lambda _: None)
    assert [r.ok for r in results] == [True], [r.message for r in results]
    starts = sorted((r.path.rsplit("/", 2)[-2], tuple(r.body["instanceIds"]))
                    for r in estate.arm.requests_to(r"/start$", "POST"))  # fmt: skip
    assert starts == [("aks-erp-12345678-vmss", ("1",)), ("aks-system-12345678-vmss", ("1",))]
    for name in down:  # the kube API's Ready condition is the evidence
        node = estate.primary.store.get("core/nodes", "", name)
        assert node is not None
        assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    assert FaultJournal(state_dir).pending() == []
