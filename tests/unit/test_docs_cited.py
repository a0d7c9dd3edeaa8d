"""No code or document cites a document of ours that is not in the repository: a
definition the code points to must be readable by whoever reads the code. Citations of
upstream documents (a line naming the project they come from) are sources, not ours."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CITED = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
UPSTREAM = ("CloudNativePG", "Kubernetes", "Traefik", "Azure", "Odoo", "Locust", "upstream", "://")


def test_every_cited_document_exists() -> None:
    sources = [*(REPO / "src").rglob("*.py"), *(REPO / "tests").rglob("*.py"), REPO / "README.md"]
    missing = []
    for path in sources:
        if path == Path(__file__):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        ours = [line for line in lines if not any(mark in line for mark in UPSTREAM)]
        for name in CITED.findall("\n".join(ours)):
            found = [REPO / name, path.parent / name, *REPO.rglob(Path(name).name)]
            if not any(p.is_file() for p in found if ".venv" not in p.parts):
                missing.append(f"{path.relative_to(REPO)} cites {name}")
    assert missing == []
