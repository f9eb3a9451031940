"""The import-linter contract in pyproject.toml holds: layers run one way, with no circles.

It is run as a user runs it (`lint-imports` in the repository root), and it is shown to bite: a
copy of the package with one upward import (pipeline -> sweep, study -> report) or one circle
inside a package (the judging backends and the Batch API backend) breaks it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if command is None:
        pytest.fail("lint-imports is missing: pip install -e '.[dev]' installs import-linter")
    return subprocess.run([command, "--no-cache", "--no-logo"], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_the_layers_contract_is_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("pipeline/__init__.py", "from eft_eval import sweep", "eft_eval.pipeline is not allowed to import eft_eval.sweep"),
    ("study/__init__.py", "from eft_eval import report", "eft_eval.study is not allowed to import eft_eval.report"),
    ("judging/_backends.py", "from eft_eval.judging import _batch", "No cycles are allowed in eft_eval.judging"),
], ids=["upward", "upward-study", "circle"])
def test_an_upward_import_or_a_circle_breaks_the_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "eft_eval", tmp_path / "eft_eval", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "eft_eval" / module).open("a") as source:
        source.write(f"\n{line}  # breaks the layers on purpose\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout
