"""Every SDK operation the Azure backend calls maps to an RBAC action, and every such
action is in the least-privilege role ``deploy/azure/gameday-role.json`` (and nothing
else is). The operations are found by scanning the backend's source, so a new SDK
call without a permission fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ledgerdrill.platforms.azure import permissions

REPO = Path(__file__).parents[2]
BACKEND = REPO / "src" / "ledgerdrill" / "platforms" / "azure"
ROLE = REPO / "deploy" / "azure" / "gameday-role.json"
CLIENT_OF = {
    "virtual_machine_scale_sets": "compute",
    "virtual_machine_scale_set_vms": "compute",
    "servers": "postgres",
    "virtual_endpoints": "postgres",
}
DIRECT_CALL = re.compile(r"\.client\.(\w+)\.(\w+)\(")  # self.client.servers.get(...)
NAMED_CALL = re.compile(r'"((?:compute|postgres)\.\w+\.\w+)"')  # runner.run("compute....")


def sdk_operations_in_source() -> set[str]:
    found: set[str] = set()
    for path in BACKEND.glob("*.py"):
        if path.name.startswith("fake_") or path.name == "permissions.py":
            continue  # the fake ARM serves requests; it does not make them
        text = path.read_text(encoding="utf-8")
        for group, method in DIRECT_CALL.findall(text):
            assert group in CLIENT_OF, f"{path.name}: unknown SDK operation group {group}"
            found.add(f"{CLIENT_OF[group]}.{group}.{method}")
        found.update(NAMED_CALL.findall(text))
    return found


def test_the_scan_finds_the_calls_it_should() -> None:
    found = sdk_operations_in_source()
    # a scan that found nothing would pass vacuously
    assert {
        "compute.virtual_machine_scale_sets.begin_power_off",
        "compute.virtual_machine_scale_set_vms.list",
        "postgres.servers.begin_restart",
        "postgres.virtual_endpoints.get",
    } <= found


def test_every_sdk_operation_has_an_action_in_the_role() -> None:
    role = json.loads(ROLE.read_text(encoding="utf-8"))
    missing = sorted(
        op for op in sdk_operations_in_source() if op not in permissions.OPERATION_ACTIONS
    )
    assert missing == [], f"SDK operations without an RBAC action in permissions.py: {missing}"
    actions = set(role["Actions"])
    absent = sorted(
        f"{op} -> {permissions.OPERATION_ACTIONS[op]}"
        for op in sdk_operations_in_source()
        if permissions.OPERATION_ACTIONS[op] not in actions
    )
    assert absent == [], f"actions missing from {ROLE.name}: {absent}"


def test_the_role_grants_nothing_more() -> None:
    role = json.loads(ROLE.read_text(encoding="utf-8"))
    assert sorted(role["Actions"]) == permissions.required_actions()
    assert not any("*" in a for a in role["Actions"]), "no wildcards in a least-privilege role"
    assert role["DataActions"] == [] and role["NotActions"] == []
    assert all("/resourceGroups/" in scope for scope in role["AssignableScopes"])
