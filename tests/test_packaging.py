"""The wheel ships the plugin folders, and the CLI starts without importing torch."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_builtin_plugins_and_finds_them(tmp_path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    [wheel] = tmp_path.glob("eft_eval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for plugin in [*ROOT.glob("judges/*.yaml"), *ROOT.glob("studies/*.yaml")]:
        assert f"eft_eval/_builtin/{plugin.parent.name}/{plugin.name}" in names
    assert any(n.startswith("eft_eval/_builtin/human_study/") for n in names)
    # The HTML report's templates, style and script are package data, read at render time.
    for template in (ROOT / "eft_eval" / "report" / "templates").iterdir():
        assert f"eft_eval/report/templates/{template.name}" in names
    assert "eft_eval/judging/prices.yaml" in names  # the cost ledger's price table
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


def test_the_lm_eval_adapter_package_never_stands_in_for_lm_eval() -> None:
    """`eft_eval/lm_eval/` is named after lm-eval: inside the package `import lm_eval` is the real
    one, `import eft_eval` registers `eft` without importing torch, and with `eft_eval/` itself
    on sys.path (a script run from in there) the package refuses to pose as lm-eval, by name."""
    code = (
        "import sys, eft_eval; assert 'torch' not in sys.modules; "
        "import eft_eval.lm_eval._backend as backend, lm_eval; "
        "from lm_eval.api.registry import model_registry; "
        "print(backend.TemplateLM.__module__, lm_eval.__file__.endswith('site-packages/lm_eval/__init__.py'), "
        "'eft' in model_registry)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["lm_eval.api.model", "True", "True"]
    package_dir = Path(__file__).resolve().parent.parent / "eft_eval"
    shadowed = subprocess.run([sys.executable, "-c", "import lm_eval"], cwd=package_dir, capture_output=True,
                              text=True, check=False)
    assert shadowed.returncode != 0 and "hiding the real lm-eval" in shadowed.stderr.splitlines()[-1]


def test_packages_import_each_other_through_their_public_names() -> None:
    """Inside `eft_eval`, a package's private modules (`_name.py`) are its own: another package
    imports what it needs from the package, whose `__init__` exports it (tests may reach in)."""
    import ast

    reaching_in = []
    for path in sorted((ROOT / "eft_eval").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        own = parts[1] if len(parts) > 2 else None  # eft_eval/<package>/...; None for eft_eval/*.py
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                module = name.split(".")
                if (len(module) > 2 and module[0] == "eft_eval" and module[1] != own
                        and any(part.startswith("_") for part in module[2:])):
                    reaching_in.append(f"{path.relative_to(ROOT)}: {name}")
    assert reaching_in == []


def test_every_package_and_ground_floor_module_says_what_it_is_for_and_exports() -> None:
    """A docstring and an `__all__` whose every name resolves (lazy re-exports included)."""
    import ast
    import importlib

    public = [ROOT / "eft_eval" / "__init__.py", *sorted((ROOT / "eft_eval").glob("*/__init__.py")),
              *sorted(p for p in (ROOT / "eft_eval").glob("*.py") if p.name != "__init__.py")]
    for path in public:
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no docstring"
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        assert isinstance(getattr(module, "__all__", None), list), f"{module.__name__} has no __all__"
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == [], f"{module.__name__}.__all__ names what it does not have: {missing}"
