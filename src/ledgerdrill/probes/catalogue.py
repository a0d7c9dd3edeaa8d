"""Probe catalogues: YAML that maps business continuity indicators to probe kinds.

A catalogue says *what* to watch ("accountants can post an invoice" -> an Odoo
transaction probe); *where* comes from connection facts -- the platform's own
(the sandbox knows its entry URL, CA and database) or the entry's fields, which may
use ``{entry_url}``-style placeholders. Secrets are never written in a catalogue:
``password_env``/``dsn_env``/``url_env`` name environment variables.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ledgerdrill.config_errors import load_yaml_mapping, validate
from ledgerdrill.durations import Duration
from ledgerdrill.errors import ConfigError
from ledgerdrill.probes.base import Probe
from ledgerdrill.probes.canary import LedgerCanary
from ledgerdrill.probes.http_tls import HttpProbe, TlsProbe
from ledgerdrill.probes.ledger import LedgerIntegrityProbe
from ledgerdrill.probes.odoo import OdooTransactionProbe
from ledgerdrill.probes.odoo_rpc import OdooTarget
from ledgerdrill.probes.postgres import PgPrimaryProbe, PgReplicationProbe, PgWriteProbe
from ledgerdrill.probes.redis_backup import BackupFreshnessProbe, RedisProbe
from ledgerdrill.targets import NAME, NAME_RULE, Strict

Facts = Mapping[str, Any]


class _Entry(Strict):
    name: str = Field(pattern=NAME.pattern, description=NAME_RULE)
    indicator: str = Field(default="", description="the business continuity indicator")
    counts_for_rto: bool | None = None
    interval: Duration | None = Field(
        default=None, description="sample this probe at its own interval (>= 50ms)"
    )
    timeout: Duration | None = Field(
        default=None,
        description="how long one sample may take (default 0.8 x interval); a longer "
        "timeout widens the RTO error bar to it",
    )

    @field_validator("interval", "timeout")
    @classmethod
    def _interval_floor(cls, value: float | None) -> float | None:
        if value is not None and not 0.05 <= value <= 3600:
            raise ValueError("must be between 50ms and 1h")
        return value


class _OdooFields(_Entry):
    url: str = "{entry_url}"
    database: str = "{database}"
    login: str = "{login}"
    password_env: str | None = Field(default=None, description="env var holding the password")
    api_key_env: str | None = Field(
        default=None,
        description="env var holding the API key, for a target whose erp_api is json2 "
        "(default: the platform's, e.g. the sandbox's demo key)",
    )
    ca_bundle: str | None = "{ca_bundle}"


class OdooTransactionEntry(_OdooFields):
    kind: Literal["odoo-transaction"]
    journal: str = "MISC"


class OdooReadEntry(_OdooFields):
    kind: Literal["odoo-read"]


class LedgerIntegrityEntry(_OdooFields):
    kind: Literal["ledger-integrity"]
    window: int = Field(default=200, ge=10, le=5000, description="newest posted entries read")


class HttpEntry(_Entry):
    kind: Literal["http"]
    url: str
    expect_status: int = Field(default=200, ge=100, le=599)
    body_contains: str | None = None
    ca_bundle: str | None = "{ca_bundle}"


class TlsEntry(_Entry):
    kind: Literal["tls"]
    host: str = "{entry_host}"
    port: str = "{entry_port}"
    server_name: str = "localhost"
    ca_bundle: str | None = "{ca_bundle}"
    warn_days: float = Field(default=14.0, ge=0, le=3650)


class PgWriteEntry(_Entry):
    kind: Literal["postgres-write"]
    dsn_env: str | None = None


class PgReplicationEntry(_Entry):
    kind: Literal["postgres-replication"]
    dsn_env: str | None = None
    min_sync: int = Field(default=1, ge=0, le=16)
    max_lag: Duration = 30.0


class PgPrimaryEntry(_Entry):
    kind: Literal["postgres-primary"]


class RedisEntry(_Entry):
    kind: Literal["redis"]
    url_env: str | None = None


class BackupEntry(_Entry):
    kind: Literal["backup-freshness"]
    max_base_age: Duration = 86_400.0
    max_wal_age: Duration = 3_600.0


class KubeEntry(_Entry):
    """Node Ready conditions, Deployment readiness and pod restarts, by watches."""

    kind: Literal["kube"]
    kubeconfig: str = Field(default="{kubeconfig}", description="'' for the default")
    context: str = "{kube_context}"
    namespace: str = "{namespace}"
    deployments: list[str] = Field(default_factory=list, max_length=32)
    node_selector: str = Field(default="", description="label selector narrowing the nodes")
    pod_selector: str | None = Field(
        default=None, description="label selector of the pods whose restarts are watched"
    )
    restarts: Literal["warn", "fail"] = Field(
        default="warn", description="a restart is a warning, or fails the sample that sees it"
    )


ProbeEntry = Annotated[
    OdooTransactionEntry
    | OdooReadEntry
    | LedgerIntegrityEntry
    | HttpEntry
    | TlsEntry
    | PgWriteEntry
    | PgReplicationEntry
    | PgPrimaryEntry
    | RedisEntry
    | BackupEntry
    | KubeEntry,
    Field(discriminator="kind"),
]


class CanaryEntry(_OdooFields):
    name: str = "ledger-canary"
    rate_hz: float = Field(default=5.0, ge=0.1, le=50)
    journal: str = "MISC"
    timeout: Duration = 3.0


class Catalogue(Strict):
    description: str = ""
    probes: list[ProbeEntry] = Field(default_factory=list, max_length=64)
    canary: CanaryEntry | None = None


def load_catalogue(path: Path) -> Catalogue:
    catalogue: Catalogue = validate(Catalogue, load_yaml_mapping(path, "probe catalogue"), path)
    names = [p.name for p in catalogue.probes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: probes: names must be unique, repeated: {', '.join(dupes)}")
    return catalogue


class _Resolver:
    """Fills placeholders and secrets; every gap is a ConfigError naming the probe."""

    def __init__(self, source: Path | str, facts: Facts) -> None:
        self.source = source
        self.facts = facts

    def text(self, entry: _Entry, field: str, value: str) -> str:
        try:
            return value.format_map(self.facts)
        except KeyError as exc:
            known = ", ".join(sorted(self.facts)) or "none"
            raise ConfigError(
                f"{self.source}: probe {entry.name}: {field} uses {{{exc.args[0]}}}, which this "
                f"platform does not provide (known: {known}); write the value instead"
            ) from None
        except (ValueError, IndexError) as exc:
            raise ConfigError(f"{self.source}: probe {entry.name}: {field}: {exc}") from None

    def secret(self, entry: _Entry, env: str | None, fact: str, what: str) -> str:
        if env is not None:
            value = os.environ.get(env)
            if not value:
                raise ConfigError(
                    f"{self.source}: probe {entry.name}: environment variable {env} "
                    f"(the {what}) is not set"
                )
            return value
        if fact in self.facts:
            return str(self.facts[fact])
        raise ConfigError(
            f"{self.source}: probe {entry.name}: no {what}; name an environment variable "
            "that holds it (this platform provides none)"
        )

    def odoo(self, entry: _OdooFields) -> OdooTarget:
        ca = self.text(entry, "ca_bundle", entry.ca_bundle) if entry.ca_bundle else None
        if ca is not None and not Path(ca).is_file():
            raise ConfigError(f"{self.source}: probe {entry.name}: ca_bundle {ca} is not a file")
        api = self.facts.get("erp_api", "jsonrpc")
        # JSON-2 authenticates with a key and never sends the password; JSON-RPC the reverse
        password = api_key = ""
        if api == "json2":
            what = "ERP API key (erp_api: json2)"
            api_key = self.secret(entry, entry.api_key_env, "api_key", what)
        else:
            password = self.secret(entry, entry.password_env, "password", "ERP password")
        return OdooTarget(
            url=self.text(entry, "url", entry.url),
            database=self.text(entry, "database", entry.database),
            login=self.text(entry, "login", entry.login),
            password=password,
            ca_bundle=ca,
            api=api,
            api_key=api_key,
        )


# probes whose samples may overlap, each on its own instance (own connection, own
# session): they keep nothing from one sample to the next that another must see. Not the
# primary probe (it compares each sample with the previous one to report a promotion),
# the Kubernetes probes (one set of watches each) or backup freshness (reads files).
_OVERLAPPING_ENTRIES = (
    OdooTransactionEntry, OdooReadEntry, LedgerIntegrityEntry, HttpEntry, TlsEntry,
    PgWriteEntry, PgReplicationEntry, RedisEntry,
)  # fmt: skip


def build_probes(catalogue: Catalogue, facts: Facts, source: Path | str) -> list[Probe]:
    """Instantiate every probe of the catalogue against ``facts``."""
    resolve = _Resolver(source, facts)
    return [_configured(entry, resolve) for entry in catalogue.probes]


def _configured(entry: Any, resolve: _Resolver) -> Probe:
    probe = _build(entry, resolve)
    if entry.counts_for_rto is not None:
        probe.counts_for_rto = entry.counts_for_rto
    if entry.interval is not None:
        probe.interval_s = entry.interval  # type: ignore[attr-defined]
    if entry.timeout is not None:
        probe.timeout_s = entry.timeout  # type: ignore[attr-defined]
    if isinstance(entry, _OVERLAPPING_ENTRIES):
        # a new instance of the same entry, for a sample that overlaps (ProbeSampler)
        probe.twin = functools.partial(_configured, entry, resolve)  # type: ignore[attr-defined]
    return probe


def _build(entry: Any, r: _Resolver) -> Probe:
    if isinstance(entry, OdooTransactionEntry):
        return OdooTransactionProbe(entry.name, r.odoo(entry), journal_code=entry.journal)
    if isinstance(entry, OdooReadEntry):
        return OdooTransactionProbe(entry.name, r.odoo(entry), read_only=True)
    if isinstance(entry, LedgerIntegrityEntry):
        return LedgerIntegrityProbe(entry.name, r.odoo(entry), window=entry.window)
    if isinstance(entry, HttpEntry):
        ca = r.text(entry, "ca_bundle", entry.ca_bundle) if entry.ca_bundle else None
        return HttpProbe(
            entry.name,
            r.text(entry, "url", entry.url),
            expect_status=entry.expect_status,
            body_contains=entry.body_contains,
            ca_bundle=ca,
        )
    if isinstance(entry, TlsEntry):
        port = r.text(entry, "port", entry.port)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{r.source}: probe {entry.name}: port {port!r} is not a TCP port")
        ca = r.text(entry, "ca_bundle", entry.ca_bundle) if entry.ca_bundle else None
        return TlsProbe(
            entry.name,
            r.text(entry, "host", entry.host),
            int(port),
            server_name=entry.server_name,
            ca_bundle=ca,
            warn_days=entry.warn_days,
        )
    if isinstance(entry, PgWriteEntry):
        return PgWriteProbe(entry.name, r.secret(entry, entry.dsn_env, "pg_dsn", "database DSN"))
    if isinstance(entry, PgReplicationEntry):
        dsn = r.secret(entry, entry.dsn_env, "pg_dsn", "database DSN")
        return PgReplicationProbe(entry.name, dsn, min_sync=entry.min_sync, max_lag_s=entry.max_lag)
    if isinstance(entry, PgPrimaryEntry):
        members = r.facts.get("pg_members")
        if not isinstance(members, Mapping) or not members:
            raise ConfigError(
                f"{r.source}: probe {entry.name}: the platform lists no database members"
            )
        return PgPrimaryProbe(entry.name, members)
    if isinstance(entry, RedisEntry):
        return RedisProbe(entry.name, r.secret(entry, entry.url_env, "redis_url", "Redis URL"))
    if isinstance(entry, BackupEntry):
        base, wal = r.facts.get("backup_base_dir"), r.facts.get("wal_archive_dir")
        if not base or not wal:
            raise ConfigError(f"{r.source}: probe {entry.name}: the platform has no backup store")
        return BackupFreshnessProbe(
            entry.name,
            Path(base),
            Path(wal),
            max_base_age_s=entry.max_base_age,
            max_wal_age_s=entry.max_wal_age,
        )
    if isinstance(entry, KubeEntry):
        from ledgerdrill.probes.kube_build import build_kube_probe

        return build_kube_probe(entry, r.text, r.source)
    raise ConfigError(f"{r.source}: probe {entry.name}: unsupported kind")


def build_canary(
    catalogue: Catalogue, facts: Facts, source: Path | str, run_id: str
) -> LedgerCanary | None:
    if catalogue.canary is None:
        return None
    entry = catalogue.canary
    return LedgerCanary(
        _Resolver(source, facts).odoo(entry),
        rate_hz=entry.rate_hz,
        timeout_s=entry.timeout,
        journal_code=entry.journal,
        run_id=run_id,
    )
