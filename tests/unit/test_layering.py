"""Issue 35's layering rules, read from the source with ``ast`` (imports under ``if
TYPE_CHECKING:`` are types only, never loaded at run time, and are not counted):

- ``platforms/registry.py`` imports nothing from outside ``platforms/`` but the shared
  errors (and pydantic, for the settings union);
- nothing under ``src/`` imports the sandbox backend except the backend itself, the
  registry above the backends, and the general CLI's one hand-over to the backend's own
  CLI module (``platforms/sandbox/cli.py``);
- no runtime module imports the fakes (``ledgerdrill.testing``)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ledgerdrill"
SANDBOX = "ledgerdrill.platforms.sandbox"


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import that runs when the module (or its function) runs."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_the_registry_imports_only_platforms() -> None:
    outside = [
        (line, module)
        for line, module in runtime_imports(SRC / "platforms" / "registry.py")
        if module.startswith("ledgerdrill")
        and not module.startswith("ledgerdrill.platforms")
        and module != "ledgerdrill.errors"
    ]
    assert outside == [], outside


def test_only_the_backend_its_registry_and_its_cli_import_the_sandbox() -> None:
    allowed = {
        SRC / "platforms" / "registry.py": None,  # any part: it builds the backend
        SRC / "cli.py": {f"{SANDBOX}.cli"},  # `ledgerdrill sandbox ...` hands over
    }
    offenders = []
    for path in SRC.rglob("*.py"):
        if (SRC / "platforms" / "sandbox") in path.parents:
            continue
        for line, module in runtime_imports(path):
            if not (module == SANDBOX or module.startswith(SANDBOX + ".")):
                continue
            if path in allowed and (allowed[path] is None or module in allowed[path]):
                continue
            offenders.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert offenders == [], offenders


def test_no_runtime_module_imports_a_fake() -> None:
    """Fakes and test servers live in ``ledgerdrill.testing``; the harness never loads
    them -- a test injects one (``platforms.azure.clients.use_arm``)."""
    offenders = [
        f"{path.relative_to(SRC)}:{line} imports {module}"
        for path in SRC.rglob("*.py")
        if (SRC / "testing") not in path.parents
        for line, module in runtime_imports(path)
        if module == "ledgerdrill.testing" or module.startswith("ledgerdrill.testing.")
    ]
    assert offenders == [], offenders
    assert (SRC / "testing" / "fakeapi" / "server.py").exists()  # the rule guards something


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    """The rules above could pass by seeing nothing: a module with each kind of import."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "import ledgerdrill.platforms.sandbox.control\n"
        "if TYPE_CHECKING:\n"
        "    from ledgerdrill.targets import Target\n"
        "def f():\n"
        "    from ledgerdrill.platforms.sandbox import cli\n"
    )
    modules = [module for _, module in runtime_imports(sample)]
    assert modules == ["typing", "ledgerdrill.platforms.sandbox.control", "ledgerdrill.platforms.sandbox"]
