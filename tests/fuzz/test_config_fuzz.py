"""Fuzzing probe catalogues and load profiles: every input ends in a valid config or a
clear ConfigError naming the file -- never another exception.

Inputs: random YAML documents, the shipped files with one field replaced by a random
value (wrong types, huge numbers, unicode) plus an unknown key beside it, random bytes.
Building probes from a valid catalogue is fuzzed too (placeholders, secrets, ports).
The counts of cases are printed (run with -s)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fuzz_strategies import mutated, paths
from fuzz_strategies import values as fuzz_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerdrill.errors import ConfigError
from ledgerdrill.load.profile import load_profile
from ledgerdrill.probes.catalogue import build_probes, load_catalogue

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = yaml.safe_load((REPO / "probes" / "sandbox.yaml").read_text())
PROFILE = yaml.safe_load((REPO / "loadprofiles" / "month-end-close.yaml").read_text())
OUTCOMES: Counter[str] = Counter()
FACTS = {
    "entry_url": "https://127.0.0.1:8443", "entry_host": "127.0.0.1", "entry_port": "8443",
    "ca_bundle": str(REPO / "README.md"), "database": "ledgerdrill", "login": "admin",
    "password": "pw", "pg_dsn": "host=127.0.0.1 port=1", "redis_url": "redis://127.0.0.1:1/0",
    "pg_members": {"db-a": "host=127.0.0.1 port=1"}, "backup_base_dir": "/tmp",
    "wal_archive_dir": "/tmp",
}  # fmt: skip

values = fuzz_values(
    ["5s", "0ms", "-1s", "1e309s", "{entry_url}", "{nope}", "{", "http", "tls",
     "odoo-transaction", "ledger-integrity", "８", ""]
)  # fmt: skip


def load_and_build_catalogue(path: Path) -> None:
    build_probes(load_catalogue(path), FACTS, path)


def check(tmp: Path, kind: str, text: str | bytes, load: Callable[[Path], Any]) -> None:
    path = tmp / f"{kind}.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load(path)
    except ConfigError as exc:
        message = str(exc)
        assert str(path) in message or "profile" in message, message
        assert "Traceback" not in message
        OUTCOMES[f"{kind}: clear error"] += 1
    else:
        OUTCOMES[f"{kind}: valid"] += 1


def mutate(base: Any, where: tuple[Any, ...], value: Any, extra: str) -> str:
    return yaml.safe_dump(mutated(base, where, value, extra), allow_unicode=True)


fuzz = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fuzz
@given(doc=values)
def test_random_documents(tmp_path: Path, doc: Any) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    check(tmp_path, "catalogue", text, load_and_build_catalogue)
    check(tmp_path, "profile", text, load_profile)


@fuzz
@given(where=st.sampled_from(paths(CATALOGUE)), value=values, extra=st.text(min_size=1, max_size=8))
def test_mutated_catalogue(tmp_path: Path, where: tuple[Any, ...], value: Any, extra: str) -> None:
    check(tmp_path, "catalogue", mutate(CATALOGUE, where, value, extra), load_and_build_catalogue)


@fuzz
@given(where=st.sampled_from(paths(PROFILE)), value=values, extra=st.text(min_size=1, max_size=8))
def test_mutated_profile(tmp_path: Path, where: tuple[Any, ...], value: Any, extra: str) -> None:
    check(tmp_path, "profile", mutate(PROFILE, where, value, extra), load_profile)


@fuzz
@given(raw=st.binary(max_size=200))
def test_random_bytes(tmp_path: Path, raw: bytes) -> None:
    check(tmp_path, "catalogue", raw, load_and_build_catalogue)
    check(tmp_path, "profile", raw, load_profile)


ARGS = st.lists(
    st.one_of(
        st.sampled_from(["report", "trend", "verify", "html", "latest", "--last", "-3", "x",
                         "--tolerance", "nan", "--reports-dir", "/nonexistent", "--target",
                         "targets/none.yaml", "README.md", "--bogus", "-k", "", "∞", "--json"]),
        st.text(max_size=12),
    ),
    max_size=6,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    command=st.sampled_from(
        ["report", "sandbox status", "plan --target /nonexistent.yaml", "cleanup", ""]
    ),
    args=ARGS,
)
def test_cli_arguments_end_in_an_exit_code(command: str, args: list[str]) -> None:
    """Random arguments to the commands that do not disrupt anything: an exit code
    (argparse's own usage error is SystemExit 2), never a traceback."""
    from ledgerdrill.cli import main

    argv = [*command.split(), *args]
    if command == "cleanup":
        argv.append("--help")  # cleanup acts on the real journal: only its parsing here
    if command == "report":
        argv += ["--reports-dir", "/nonexistent-ledgerdrill-reports"]  # never the user's
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    assert code in {0, 1, 2, 3}, (argv, code)
    OUTCOMES[f"cli: exit {code}"] += 1


def test_zz_report_counts() -> None:
    """Runs last in this file: prints how many cases ended which way."""
    print(f"\ncatalogue, profile and CLI fuzzing: {sum(OUTCOMES.values())} cases: {dict(OUTCOMES)}")
    assert OUTCOMES["catalogue: clear error"] > 0 and OUTCOMES["profile: clear error"] > 0
    assert sum(n for k, n in OUTCOMES.items() if k.startswith("cli:")) > 0
