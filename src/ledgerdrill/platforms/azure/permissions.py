"""The Azure RBAC action behind every SDK operation the backend calls: the source of
``deploy/azure/gameday-role.json`` (a least-privilege custom role for a game-day
identity). ``tests/azure/test_gameday_role.py`` scans the backend's source for SDK
calls and fails when one has no action here, or an action is missing from the role.
"""

from __future__ import annotations

# "<client>.<operation group>.<method>" -> the RBAC action ARM checks for it
OPERATION_ACTIONS: dict[str, str] = {
    "compute.virtual_machine_scale_set_vms.list":
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
    "compute.virtual_machine_scale_sets.begin_power_off":
        "Microsoft.Compute/virtualMachineScaleSets/powerOff/action",
    "compute.virtual_machine_scale_sets.begin_deallocate":
        "Microsoft.Compute/virtualMachineScaleSets/deallocate/action",
    "compute.virtual_machine_scale_sets.begin_start":
        "Microsoft.Compute/virtualMachineScaleSets/start/action",
    "compute.virtual_machine_scale_sets.begin_restart":
        "Microsoft.Compute/virtualMachineScaleSets/restart/action",
    "postgres.servers.get": "Microsoft.DBforPostgreSQL/flexibleServers/read",
    "postgres.servers.begin_restart": "Microsoft.DBforPostgreSQL/flexibleServers/restart/action",
    # point-in-time restore, geo-restore (a new server) and replica promotion (a PATCH)
    "postgres.servers.begin_create_or_update": "Microsoft.DBforPostgreSQL/flexibleServers/write",
    "postgres.servers.begin_update": "Microsoft.DBforPostgreSQL/flexibleServers/write",
    "postgres.virtual_endpoints.get":
        "Microsoft.DBforPostgreSQL/flexibleServers/virtualendpoints/read",
}  # fmt: skip

# polling a long-running operation reads its status resource
POLLING_ACTIONS: tuple[str, ...] = (
    "Microsoft.Compute/locations/operations/read",
    "Microsoft.DBforPostgreSQL/locations/azureAsyncOperation/read",
    "Microsoft.DBforPostgreSQL/locations/operationResults/read",
)


def required_actions() -> list[str]:
    return sorted({*OPERATION_ACTIONS.values(), *POLLING_ACTIONS})
