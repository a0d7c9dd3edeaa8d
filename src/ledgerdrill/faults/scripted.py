"""``ScriptedOutage``: a ground truth for measuring the probes.

Every replica of a service hangs (SIGSTOP on the sandbox) for exactly ``duration_s``
and then resumes by itself; the fault records when the pause and the resume really
happened, so a benchmark can compare measured downtime and RTO with the truth.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from ledgerdrill.errors import FaultError
from ledgerdrill.faults.base import Evidence, Fault, JSONParams, TargetRef, register_fault
from ledgerdrill.platforms.base import NodeControl, Platform, ServiceControl
from ledgerdrill.target_kinds import TargetKind


@register_fault
class ScriptedOutage(Fault):
    kind = "scripted-outage"
    capability = ServiceControl

    def __init__(self, platform: Platform, duration_s: float, role: str = "erp") -> None:
        super().__init__(platform)
        if not 0 < duration_s <= 600:
            raise FaultError(f"scripted outage of {duration_s}s: allowed 0 < duration <= 600s")
        self.duration_s = duration_s
        self.role = role
        self.control = platform.capability(ServiceControl)
        # time.monotonic_ns() when every process was paused / resumed (the ground truth;
        # the same clock as the timeline's SystemClock instants)
        self.paused_ns: int | None = None
        self.resumed_ns: int | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"hang every {self.role} replica for exactly {self.duration_s:g}s"

    def targets(self) -> Sequence[TargetRef]:
        nodes = {n.name: n for n in self.platform.capability(NodeControl).nodes()}
        return [
            TargetRef(TargetKind.NODE, name, zone=nodes[name].zone, region=nodes[name].region)
            for name in self.control.service_nodes(self.role)
            if name in nodes
        ]

    def params(self) -> JSONParams:
        return {"duration_s": self.duration_s, "role": self.role}

    def inject(self) -> None:
        self.control.pause_service(self.role)
        self.paused_ns = time.monotonic_ns()
        self._timer = threading.Timer(self.duration_s, self.revert)
        self._timer.daemon = True
        self._timer.start()

    def verify(self) -> Evidence:
        if not self.control.service_paused(self.role) and self.resumed_ns is None:
            raise FaultError(f"the {self.role} replicas are not paused")
        return Evidence(f"every {self.role} replica is paused")

    def revert(self) -> None:
        with self._lock:  # the timer and a teardown may both get here
            if self._timer is not None:
                self._timer.cancel()
            self.control.resume_service(self.role)
            if self.resumed_ns is None and self.paused_ns is not None:
                self.resumed_ns = time.monotonic_ns()

    @property
    def true_outage_s(self) -> float | None:
        if self.paused_ns is None or self.resumed_ns is None:
            return None
        return (self.resumed_ns - self.paused_ns) / 1e9
