"""Ships the plugin folders (judges/, tasks/, studies/, human_study/) inside the wheel as eft_eval/_builtin/.

They live at the repository root so that researchers find and copy them easily (as lm-eval's task
YAMLs); `eft_eval.plugins.builtin_dir` looks in `_builtin/` first and the repository root second,
so editable installs read the root folders directly. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PLUGIN_FOLDERS = ("judges", "tasks", "studies", "human_study")


class BuildWithPlugins(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder in PLUGIN_FOLDERS:
            target = Path(self.build_lib) / "eft_eval" / "_builtin" / folder
            shutil.copytree(folder, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithPlugins})
