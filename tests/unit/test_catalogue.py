"""Probe catalogues: a bad one is one clear error; a good one builds the probes it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerdrill.errors import ConfigError
from ledgerdrill.probes.catalogue import build_canary, build_probes, load_catalogue
from ledgerdrill.probes.http_tls import HttpProbe, TlsProbe
from ledgerdrill.probes.ledger import LedgerIntegrityProbe
from ledgerdrill.probes.odoo import OdooTransactionProbe
from ledgerdrill.probes.postgres import PgPrimaryProbe, PgReplicationProbe, PgWriteProbe
from ledgerdrill.probes.redis_backup import BackupFreshnessProbe, RedisProbe

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(text)
    return path


def facts(tmp_path: Path) -> dict[str, object]:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used until a probe connects")
    return {
        "entry_url": "https://127.0.0.1:8443",
        "entry_host": "127.0.0.1",
        "entry_port": "8443",
        "ca_bundle": str(ca),
        "database": "ledgerdrill",
        "login": "admin",
        "password": "s3cret",
        "pg_dsn": "host=127.0.0.1 port=1 user=postgres",
        "pg_members": {"db-a": "host=127.0.0.1 port=1", "db-b": "host=127.0.0.1 port=2"},
        "redis_url": "redis://:pw@127.0.0.1:1/0",
        "backup_base_dir": str(tmp_path),
        "wal_archive_dir": str(tmp_path),
    }


def test_the_shipped_sandbox_catalogue_builds_every_kind(tmp_path: Path) -> None:
    path = REPO / "probes" / "sandbox.yaml"
    catalogue = load_catalogue(path)
    probes = build_probes(catalogue, facts(tmp_path), path)
    kinds = {type(p) for p in probes}
    assert kinds == {
        OdooTransactionProbe, LedgerIntegrityProbe, HttpProbe, TlsProbe, PgWriteProbe, PgReplicationProbe,
        PgPrimaryProbe, RedisProbe, BackupFreshnessProbe,
    }  # fmt: skip
    names = [p.name for p in probes]
    assert len(names) == len(set(names))
    http = next(p for p in probes if isinstance(p, HttpProbe))
    assert http.url == "https://127.0.0.1:8443/web/health?db_server_status=1"
    assert next(p for p in probes if p.name == "database-writable").counts_for_rto is False
    # samples of a stateless probe overlap, each on a twin with its own connection and
    # the same settings; the primary probe (it compares samples) and backups do not
    twin = http.twin()  # type: ignore[attr-defined]
    assert type(twin) is HttpProbe and twin is not http and twin.url == http.url
    posting = next(p for p in probes if p.name == "post-journal-entry")
    posting_twin = posting.twin()  # type: ignore[attr-defined]
    assert posting_twin.timeout_s == posting.timeout_s == 1.0  # type: ignore[attr-defined]
    assert posting_twin._session is None  # its own session, made at its first sample
    single = {p.name for p in probes if getattr(p, "twin", None) is None}
    assert single == {"database-primary", "backup-freshness"}
    canary = build_canary(catalogue, facts(tmp_path), path, "run-1")
    assert canary is not None and canary.prefix == "canary-run-1-"
    assert "s3cret" not in repr(canary.target)


def test_unknown_kind_names_file_field_and_allowed_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, "probes:\n  - name: x\n    kind: smtp\n")
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    text = str(err.value)
    assert str(path) in text and "probes.0.kind" in text
    assert "odoo-transaction" in text and "smtp" in text
    assert "Traceback" not in text


def test_bad_field_is_one_clear_line(tmp_path: Path) -> None:
    path = write(tmp_path, "probes:\n  - name: t\n    kind: tls\n    warn_dayz: 3\n")
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    assert "warn_dayz" in str(err.value) and "warn_days" in str(err.value)


def test_repeated_names_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, "probes:\n  - {name: a, kind: redis}\n  - {name: a, kind: postgres-primary}\n"
    )
    with pytest.raises(ConfigError, match="repeated: a"):
        load_catalogue(path)


def test_placeholder_the_platform_does_not_provide(tmp_path: Path) -> None:
    path = write(tmp_path, "probes:\n  - {name: h, kind: http, url: '{portal_url}/health'}\n")
    with pytest.raises(ConfigError, match=r"probe h: url uses \{portal_url\}"):
        build_probes(load_catalogue(path), facts(tmp_path), path)


def test_secret_from_environment_must_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path, "probes:\n  - {name: o, kind: odoo-transaction, password_env: ERP_PW_TEST}\n"
    )
    monkeypatch.delenv("ERP_PW_TEST", raising=False)
    with pytest.raises(ConfigError, match="ERP_PW_TEST"):
        build_probes(load_catalogue(path), facts(tmp_path), path)
    monkeypatch.setenv("ERP_PW_TEST", "from-env")
    probe = build_probes(load_catalogue(path), facts(tmp_path), path)[0]
    assert isinstance(probe, OdooTransactionProbe)
    assert probe.target.password == "from-env"


def test_no_secret_anywhere_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "probes:\n  - {name: r, kind: redis}\n")
    with pytest.raises(ConfigError, match="probe r: no Redis URL"):
        build_probes(load_catalogue(path), {}, path)


def test_bad_port_fact(tmp_path: Path) -> None:
    path = write(tmp_path, "probes:\n  - {name: t, kind: tls, port: 'http'}\n")
    with pytest.raises(ConfigError, match="not a TCP port"):
        build_probes(load_catalogue(path), facts(tmp_path), path)


def test_json2_takes_the_api_key_and_never_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "probes:\n  - {name: o, kind: odoo-transaction}\n")
    json2 = {**facts(tmp_path), "erp_api": "json2"}
    del json2["password"]  # a JSON-2 target may have no password at all
    with pytest.raises(ConfigError, match=r"probe o: no ERP API key \(erp_api: json2\)"):
        build_probes(load_catalogue(path), json2, path)
    probe = build_probes(load_catalogue(path), {**json2, "api_key": "k" * 40}, path)[0]
    assert isinstance(probe, OdooTransactionProbe)
    assert probe.target.api == "json2" and probe.target.api_key == "k" * 40
    assert probe.target.password == ""
    assert "k" * 40 not in repr(probe.target)
    # a key of one's own, from the environment, wins over the platform's
    path = write(tmp_path, "probes:\n  - {name: o, kind: odoo-transaction, api_key_env: K}\n")
    monkeypatch.setenv("K", "from-env")
    probe = build_probes(load_catalogue(path), {**json2, "api_key": "k" * 40}, path)[0]
    assert probe.target.api_key == "from-env"  # type: ignore[attr-defined]
