"""The GitHub Actions workflow passes zizmor, the workflow linter, with the repository's
policy (``.github/zizmor.yml``): no template injection (an input pasted into a shell
script), no credentials left for later steps, GitHub's own actions by major tag and any
other action by commit hash. And the linter is not a formality: the same workflow with
the game-day input pasted into its script fails it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def zizmor(*paths: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    assert binary, "zizmor is not installed: it is in the test extras (pip install -e '.[test]')"
    return subprocess.run(
        [binary, "--offline", "--no-progress", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_workflows_pass_the_linter() -> None:
    found = sorted(WORKFLOWS.glob("*.yml"))
    assert found, "no workflow found"
    done = zizmor(*found)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_input_pasted_into_the_script_fails_it(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    shutil.copy(REPO / ".github" / "zizmor.yml", tmp_path / ".github" / "zizmor.yml")
    text = (WORKFLOWS / "gameday.yml").read_text()
    safe = 'args+=(-k "$SCENARIOS")'
    assert safe in text, "the workflow no longer passes its input through the environment"
    (broken / "gameday.yml").write_text(
        text.replace(safe, "args+=(-k ${{ github.event.inputs.scenarios }})")
    )
    done = zizmor(broken / "gameday.yml")
    assert done.returncode != 0, done.stdout
    assert "template-injection" in done.stdout, done.stdout
