"""The audit evidence bundle: ``reports/<run-id>/evidence/`` with everything a run rests on
and a ``manifest.json`` of SHA-256 hashes chained to the previous run's manifest.

Contents: the resolved target (secrets redacted), each scenario's timeline and its raw
probe samples, the load output, the fault journal records of the run, the versions of
the harness, Python and the platform's components. ``verify`` recomputes every hash,
finds missing or extra files and checks the link to the previous manifest: editing,
adding or deleting anything, or rewriting an earlier run, shows.
"""

from __future__ import annotations

import hashlib
import json
import platform as python_platform
import re
import shutil
from pathlib import Path
from typing import Any

from ledgerdrill import __version__
from ledgerdrill.report.model import RunReport

MANIFEST = "manifest.json"
SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|dsn|credential|private.?key|api.?key)", re.I
)
URL_USERINFO = re.compile(r"(\w+://)[^/@\s:]*:[^/@\s]*@")
DSN_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.I)


def redact(value: Any) -> Any:
    """Secrets out of any JSON-like value: by key name, URLs with userinfo, DSN passwords."""
    if isinstance(value, dict):
        return {k: ("[redacted]" if SECRET_KEY.search(str(k)) and v else redact(v))
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return DSN_PASSWORD.sub(r"\1[redacted]", URL_USERINFO.sub(r"\1[redacted]@", value))
    return value


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def build_bundle(
    report: RunReport,
    run_dir: Path,
    *,
    target_data: dict[str, Any] | None,
    journal_records: list[dict[str, Any]],
    previous_manifest_sha256: str | None,
    components: dict[str, str] | None = None,
) -> Path:
    """Write ``evidence/`` and its manifest; return the manifest's path."""
    folder = run_dir / "evidence"
    folder.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: Any) -> None:
        (folder / name).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")

    put("target.json", redact(target_data or {}))
    put("versions.json", {"ledgerdrill": __version__, "python": python_platform.python_version(),
                          "os": python_platform.platform(), **(components or {})})  # fmt: skip
    put("journal.json", redact(journal_records))
    put("report.json", json.loads(report.model_dump_json()))
    for name in ("timelines", "load"):
        source = run_dir / name
        if source.is_dir():
            shutil.copytree(source, folder / name, dirs_exist_ok=True)
    samples = folder / "samples"
    samples.mkdir(exist_ok=True)
    for timeline in sorted((folder / "timelines").glob("*.jsonl")):
        lines = [line for line in timeline.read_text(encoding="utf-8").splitlines()
                 if '"type": "sample"' in line]  # fmt: skip
        (samples / timeline.name.replace(".timeline", ".samples")).write_text(
            "\n".join(lines) + "\n", encoding="utf-8"
        )
    files = {str(p.relative_to(folder)): sha256(p)
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}  # fmt: skip
    manifest = {"run_id": report.run_id, "files": files, "previous": previous_manifest_sha256}
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def verify(run_dir: Path, previous_manifest: Path | None = None) -> list[str]:
    """Problems found (empty: the bundle is intact)."""
    folder = run_dir / "evidence"
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{path}: manifest unreadable ({exc})"]
    problems = []
    listed: dict[str, str] = manifest.get("files", {})
    for name, expected in sorted(listed.items()):
        file = folder / name
        if not file.is_file():
            problems.append(f"{file}: missing")
        elif sha256(file) != expected:
            problems.append(f"{file}: changed (SHA-256 differs from the manifest)")
    for file in sorted(folder.rglob("*")):
        name = str(file.relative_to(folder))
        if file.is_file() and file.name != MANIFEST and name not in listed:
            problems.append(f"{file}: not in the manifest (added afterwards)")
    if previous_manifest is not None:
        actual = sha256(previous_manifest) if previous_manifest.is_file() else None
        if manifest.get("previous") != actual:
            problems.append(
                f"{path}: the chain is broken: it names the previous manifest "
                f"{manifest.get('previous')}, but {previous_manifest} hashes to {actual}"
            )
    return problems
