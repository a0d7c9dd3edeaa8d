"""No code or document cites a document of ours that is not in the repository: a
definition the code points to must be readable by whoever reads the code. Ours: a
capitalised name (README.md, SECURITY.md, ...) or a path under docs/. Other .md names in
the code are files it writes (a report's summary.md) or upstream sources; they are not
checked here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CITED = re.compile(r"(?<![\w/.-])((?:docs/)?[\w.-]+\.md)\b")
OURS = re.compile(r"^(docs/[\w./-]+|[A-Z][A-Z0-9_-]*)\.md$")


def tracked_documents() -> set[str]:
    """The .md files the repository holds (git's list: a fresh clone has exactly these)."""
    listed = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return {*listed, *(Path(p).name for p in listed)}


def test_every_cited_document_of_ours_exists() -> None:
    present = tracked_documents()
    sources = [*(REPO / "src").rglob("*.py"), *(REPO / "tests").rglob("*.py"), REPO / "README.md"]
    missing = [
        f"{path.relative_to(REPO)} cites {name}"
        for path in sources
        if path != Path(__file__)
        for name in CITED.findall(path.read_text(encoding="utf-8"))
        if OURS.match(name) and name not in present
    ]
    assert missing == []


def test_the_check_sees_a_missing_document() -> None:
    assert OURS.match("DESIGN.md") and "DESIGN.md" not in tracked_documents()
    assert OURS.match("docs/architecture.md") and "docs/architecture.md" in tracked_documents()
    assert not OURS.match("summary.md")  # a file the report writes, not a document
