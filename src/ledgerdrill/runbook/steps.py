"""The runbook steps the shipped scenarios use.

=====================  ===========================================  =====================
step                   what it does                                  after an interrupt
=====================  ===========================================  =====================
RegionFailover         promote the region's database, point its      left to the region
                       replicas at it, move traffic there            outage's revert
PointInTimeRestore     restore to a point in time into a new server  finished (stages done
                       and switch the ERP to it                      are not repeated)
ReleaseRollback        roll every replica back to a release          finished
CertificateRotation    serve a freshly issued valid certificate      left to the fault's
                                                                     revert
=====================  ===========================================  =====================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ledgerdrill.errors import FaultError, PlatformError
from ledgerdrill.faults.base import Evidence, JSONParams, TargetRef
from ledgerdrill.platforms.base import (
    CertificateControl,
    DatabaseControl,
    NodeControl,
    Platform,
    RegionControl,
    ReleaseControl,
)
from ledgerdrill.runbook.base import RunbookAction, register_runbook
from ledgerdrill.target_kinds import TargetKind

if TYPE_CHECKING:
    from ledgerdrill.timeline import Timeline


@runtime_checkable
class FailoverDescriptions(Protocol):
    """Optional, next to ``RegionControl``: a backend that can say what its DR runbook
    changes (which cluster is promoted, which deployment scaled), for the plan."""

    def fail_over_actions(self, region: str) -> list[str]: ...


@register_runbook
class RegionFailover(RunbookAction):
    kind = "region-failover"
    capability = RegionControl
    after_interrupt = (
        "nothing is finished by cleanup: the region outage's revert fails back "
        "if the promotion happened, and brings the region back either way"
    )

    def __init__(self, platform: Platform, region: str) -> None:
        super().__init__(platform)
        self.region = region
        self.regions = platform.capability(RegionControl)

    def describe(self) -> str:
        return (
            f"fail over to region {self.region}: promote its database, point its "
            "replicas at it, move traffic there"
        )

    def changes(self) -> list[str]:
        if isinstance(self.platform, FailoverDescriptions):
            return self.platform.fail_over_actions(self.region)
        return [self.describe()]

    def _region_members(self) -> list[str]:
        if not (self.platform.supports(DatabaseControl) and self.platform.supports(NodeControl)):
            return []
        in_region = {
            n.name for n in self.platform.capability(NodeControl).nodes() if n.region == self.region
        }
        topology = self.platform.capability(DatabaseControl).database_topology()
        return [m.name for m in topology.members if m.node in in_region or m.name in in_region]

    def targets(self) -> Sequence[TargetRef]:
        try:
            members = self._region_members()
        except PlatformError:
            members = []
        if members:  # what is promoted: the region's database members
            return [TargetRef(TargetKind.DATABASE, m, region=self.region) for m in members]
        return [TargetRef(TargetKind.REGION, self.region, region=self.region)]

    def params(self) -> JSONParams:
        return {"region": self.region}

    def run(self) -> None:
        def fail_over() -> JSONParams:
            self.regions.fail_over_to(self.region)
            return {}

        self.stage("failed-over", fail_over)

    def verify(self) -> Evidence:
        members = set(self._region_members())
        if members and self.platform.supports(DatabaseControl):
            primary = self.platform.capability(DatabaseControl).database_topology().primary
            if primary is None or primary.name not in members:
                found = primary.name if primary else "none"
                raise FaultError(f"after the failover the primary is {found}, not in {self.region}")
            return Evidence(f"{primary.name} in region {self.region} is the database primary")
        return Evidence(f"failed over to region {self.region}")

    def finish_after_interrupt(self) -> str:
        return "left to the region outage's revert (it fails back if the promotion happened)"


@register_runbook
class PointInTimeRestore(RunbookAction):
    """Restore the database as it was at a point in time into a new server, then switch
    the ERP to it. The restore is idempotent per point in time on every backend (the
    server's name is derived from the point: an earlier, interrupted restore is reused,
    never made twice)."""

    kind = "point-in-time-restore"
    capability = DatabaseControl
    after_interrupt = (
        "finished by cleanup: a restore already made is reused (never a second one), "
        "then the ERP is switched to it; settling adopts it back into HA"
    )

    def __init__(self, platform: Platform, point_in_time: str | None = None) -> None:
        super().__init__(platform)
        self.point_in_time = point_in_time
        self.db = platform.capability(DatabaseControl)

    def prepare(self) -> None:
        if self.point_in_time is None and self.resolves is not None:
            found = getattr(self.resolves, "restore_point", None)
            self.point_in_time = str(found) if found else None
        if self.point_in_time is None:
            raise FaultError("point-in-time restore: no restore point was recorded")

    def describe(self) -> str:
        point = self.point_in_time or "the instant before the bad change"
        return f"restore the database to {point} into a new server and switch the ERP to it"

    def changes(self) -> list[str]:
        point = self.point_in_time or "the instant before the bad change (read when it runs)"
        return [
            f"create a new database server from the newest base backup and the WAL archive, "
            f"recovered to {point}",
            "point the ERP's database connection at the restored server (the replicas restart)",
            "afterwards the platform settles: the restored data becomes the HA cluster's again "
            "(standby and DR replica rebuilt from it)",
        ]

    def targets(self) -> Sequence[TargetRef]:
        try:
            name = self.db.application_database()
        except PlatformError:
            name = "the application database"
        return [TargetRef(TargetKind.DATABASE, name)]

    def params(self) -> JSONParams:
        return {"point_in_time": self.point_in_time}

    def run(self) -> None:
        if self.point_in_time is None:
            self.prepare()
        point = str(self.point_in_time)
        restored = self.stage(
            "restored", lambda: {"server": self.db.restore_to_point_in_time(point)}
        )
        server = str(restored["server"])

        def switch() -> JSONParams:
            self.db.switch_application_database(server)
            return {"server": server}

        self.stage("switched", switch)

    @property
    def server(self) -> str | None:
        found = self.stages.get("restored", {}).get("server")
        return str(found) if found else None

    def verify(self) -> Evidence:
        using = self.db.application_database()
        if self.server is not None and using != self.server:
            raise FaultError(f"the ERP uses {using}, not the restored server {self.server}")
        return Evidence(f"the ERP uses the restored server {using} (as of {self.point_in_time})")


@register_runbook
class ReleaseRollback(RunbookAction):
    kind = "release-rollback"
    capability = ReleaseControl
    after_interrupt = "finished by cleanup: every replica rolled back (nothing if it already is)"

    def __init__(self, platform: Platform, to_version: str | None = None) -> None:
        super().__init__(platform)
        self.to_version = to_version
        self.releases = platform.capability(ReleaseControl)

    def prepare(self) -> None:
        if self.to_version is None and self.resolves is not None:
            found = getattr(self.resolves, "previous", None)
            self.to_version = str(found) if found else None
        if self.to_version is None:
            raise FaultError("release rollback: the previous release is not known")

    def describe(self) -> str:
        return f"roll back every replica to {self.to_version or 'the previous release'}"

    def targets(self) -> Sequence[TargetRef]:
        return [TargetRef(TargetKind.RELEASE, self.to_version or "previous")]

    def params(self) -> JSONParams:
        return {"to_version": self.to_version}

    def run(self) -> None:
        if self.to_version is None:
            self.prepare()
        version = str(self.to_version)

        def roll_back() -> JSONParams:
            if self.releases.current_release().version != version:
                self.releases.roll_back(version)
            return {}

        self.stage("rolled-back", roll_back)

    def verify(self) -> Evidence:
        current = self.releases.current_release()
        if current.version != self.to_version:
            raise FaultError(f"release {current.version} runs, expected {self.to_version}")
        return Evidence(f"release {current.version} runs on {current.replicas} replicas")


@register_runbook
class CertificateRotation(RunbookAction):
    kind = "certificate-rotation"
    capability = CertificateControl
    after_interrupt = (
        "nothing is finished by cleanup: the certificate fault's revert puts the "
        "original certificate back"
    )

    def __init__(self, platform: Platform, entry_point: str = "entry") -> None:
        super().__init__(platform)
        self.entry_point = entry_point
        self.certs = platform.capability(CertificateControl)

    def describe(self) -> str:
        return f"rotate {self.entry_point} to a freshly issued valid certificate"

    def targets(self) -> Sequence[TargetRef]:
        return [TargetRef(TargetKind.CERTIFICATE, self.entry_point)]

    def params(self) -> JSONParams:
        return {"entry_point": self.entry_point}

    def run(self) -> None:
        def rotate() -> JSONParams:
            self.certs.install_certificate("valid")
            return {"fingerprint": self.certs.served_certificate().fingerprint_sha256}

        self.stage("rotated", rotate)

    def verify(self) -> Evidence:
        served = self.certs.served_certificate()  # from the wire
        wanted = self.stages.get("rotated", {}).get("fingerprint")
        if served.variant != "valid" or (wanted and served.fingerprint_sha256 != wanted):
            raise FaultError(f"{self.entry_point} serves a {served.variant} certificate")
        return Evidence(
            f"{self.entry_point} serves the new certificate (not after {served.not_after_iso})",
            {"fingerprint_sha256": served.fingerprint_sha256},
        )

    def finish_after_interrupt(self) -> str:
        return "left to the certificate fault's revert (the original certificate comes back)"

    def after_recovery(self, timeline: Timeline) -> None:
        """When clients first saw the new certificate: the first healthy sample after
        the rotation whose detail names its fingerprint."""
        fingerprint = str(self.stages.get("rotated", {}).get("fingerprint") or "")
        rotated_at = _instant(timeline, "runbook.done", self.kind)
        if not fingerprint or rotated_at is None:
            return
        seen = [s for s in timeline.samples(start=rotated_at) if s.ok and fingerprint in s.detail]
        timeline.event(
            "certificate.rotation-seen", fingerprint[:16],
            seconds=round(seen[0].at.plus(seen[0].latency_s).seconds_since(rotated_at), 3)
            if seen else None,
        )  # fmt: skip


def _instant(timeline: Timeline, kind: str, name: str) -> Any:
    found = [e.at for e in timeline.events() if e.kind == kind and e.name == name]
    return found[-1] if found else None
