"""The one error tree of ledgerdrill.

Every backend translates its own exceptions into these at its boundary
(``raise PlatformError(...) from exc``), so callers handle one family.
A user's mistake (a target file, a profile, a CLI flag) is a ``ConfigError``
whose message names the file, the field and what is allowed: the CLI prints
it on one line and exits 2, never with a traceback.
"""

from __future__ import annotations


class LedgerdrillError(Exception):
    """Base of every error ledgerdrill raises on purpose."""


class ConfigError(LedgerdrillError):
    """Bad input: a target file, probe catalogue, load profile or CLI flag."""


class SafetyViolation(LedgerdrillError):
    """An action was refused before anything was touched (allowlist, blast radius, lock)."""


class UnsupportedCapability(LedgerdrillError):
    """The platform backend cannot do what a scenario asks (the scenario skips)."""

    def __init__(self, platform: str, capability: str, reason: str = "") -> None:
        self.platform = platform
        self.capability = capability
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(f"platform {platform!r} has no {capability}{detail}")


class PlatformError(LedgerdrillError):
    """A backend call failed (process, API server, cloud API)."""


class FaultError(LedgerdrillError):
    """A fault could not be injected, or its effect could not be verified."""


class RevertError(FaultError):
    """A fault could not be reverted. Never swallowed: it stays in the journal."""


class ProbeError(LedgerdrillError):
    """Raised only while building a probe from bad settings; a probe's sample never raises."""
