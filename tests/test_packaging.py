"""The wheel ships the plugin folders, and the CLI starts without importing torch."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_builtin_plugins_and_finds_them(tmp_path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    [wheel] = tmp_path.glob("eft_eval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for plugin in ROOT.glob("judges/*.yaml"):
        assert f"eft_eval/_builtin/judges/{plugin.name}" in names
    assert any(n.startswith("eft_eval/_builtin/human_study/") for n in names)
    # Installed from the wheel (no repository beside it), the locator finds the shipped folders.
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = "from eft_eval.plugins import builtin_dir; print(builtin_dir('judges'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(target / "eft_eval" / "_builtin" / "judges")


def test_cli_help_does_not_import_torch() -> None:
    code = "import sys; from eft_eval.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
