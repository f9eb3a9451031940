"""Where the built-in plugin folders (`judges/`, `tasks/`, `studies/`, `human_study/`) live, and
what kind of plugin a YAML file is.

In a source checkout or editable install they sit at the repository root; in a wheel they are
shipped inside the package as `eft_eval/_builtin/<kind>` (see pyproject.toml). One `--include-path`
folder may hold tasks, judges and studies side by side: each file's kind is read from its content
(`plugin_file_kind`), so each loader takes its own files and leaves the others alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import read_text

PluginKind = Literal["judges", "tasks", "studies", "human_study"]
PluginFileKind = Literal["judge", "task", "study"]

_TASK_KEYS = {"task", "group", "tag", "include", "output_type", "doc_to_text", "dataset_path", "custom_dataset"}
"""Keys of lm-eval task configs; a base that tasks include (`_judged_task.yaml`) has no `task` of its own."""

_PACKAGE_DIR = Path(__file__).resolve().parent


def builtin_dir(kind: PluginKind) -> Path:
    """The folder holding the built-in plugins of one kind."""
    for candidate in (_PACKAGE_DIR / "_builtin" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"built-in plugin folder {kind!r} not found next to {_PACKAGE_DIR}")


def plugin_dirs(kind: PluginKind, include_paths: list[str | Path] | None = None) -> list[Path]:
    """Built-in folder first, then the user's `--include-path` folders in the order given."""
    return [builtin_dir(kind), *(Path(p) for p in include_paths or [])]


class _AnyTagLoader(yaml.SafeLoader):
    """Safe YAML that reads any tag (lm-eval's `!function utils.load_hh`) as its plain value: enough to
    tell a file's kind, and nothing is imported or run."""


def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_AnyTagLoader.add_multi_constructor("!", _untagged)


def read_plugin_yaml(path: str | Path) -> Any:
    """A plugin YAML file's content, tags read as plain values; an unreadable file is a one-line error."""
    path = Path(path)
    text = read_text(path, "YAML file")  # missing, a folder, not UTF-8: one line naming it
    try:
        return yaml.load(text, Loader=_AnyTagLoader)  # noqa: S506 (a SafeLoader; tags become plain values)
    except yaml.YAMLError as error:
        raise EFTEvalError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None


def plugin_file_kind(data: Any) -> PluginFileKind | None:
    """What a plugin file's content is: a judge (`prompt` and `score`, or `prompt` and `kind: pairwise`), a
    study (`study`), an lm-eval task, group or shared base of tasks (`task`, `group`, `include`,
    `output_type`, ...), or None."""
    if not isinstance(data, dict):
        return None
    if "prompt" in data and ("score" in data or data.get("kind") == "pairwise"):
        return "judge"
    if "study" in data:
        return "study"
    if _TASK_KEYS & set(data):
        return "task"
    return None


def yaml_files(folder: Path) -> list[Path]:
    """The YAML files directly in `folder`, sorted."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def unrecognized_files(include_paths: Sequence[str | Path]) -> list[str]:
    """`PATH: why` for each YAML file in the include folders that is no task, judge or study (not valid
    YAML, not a mapping, none of their keys): what an "unknown name" error adds, since every loader
    passes over the files it does not recognize."""
    found = []
    for folder in map(Path, include_paths):
        for path in yaml_files(folder) if folder.is_dir() else []:
            try:
                data = read_plugin_yaml(path)
            except EFTEvalError as error:
                found.append(str(error))
                continue
            if plugin_file_kind(data) is None:
                keys = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
                found.append(f"{path}: not a task (no 'task'), judge (no 'prompt' and 'score') or study "
                             f"(no 'study'): {keys or 'empty'}")
    return found


def unrecognized_note(include_paths: Sequence[str | Path]) -> str:
    """`; not read (no task, judge or study): PATH: why` for an "unknown name" error, or ''."""
    found = unrecognized_files(include_paths)
    return f"; files in the include folders that are no task, judge or study: {'; '.join(found)}" if found else ""


def check_plugin_name(name: object, key: str, source: str) -> str:
    """`name` if it can be one folder name; else a one-line error naming `key` in `source`.

    A task's, study's or judge's name becomes part of output paths (`runs/TASK/...`,
    `studies-out/STUDY`): a separator or `..` in it would write outside the output folder, so
    neither is a name. (Judge files are stricter still: letters, digits, `_`, `-`, `.`.)
    """
    if not isinstance(name, str) or not name.strip():
        raise EFTEvalError(f"{source}: {key} must be a non-empty string, got {name!r}")
    separators = {"/", "\\", *(sep for sep in (os.sep, os.altsep) if sep)}
    if any(sep in name for sep in separators) or ".." in name or name.startswith(".") or not name.isprintable():
        raise EFTEvalError(f"{source}: {key} {name!r} is not a plain name (no path separators, no '..', no leading "
                           "'.'): it names output folders; rename it")
    return name


__all__ = ["PluginFileKind", "PluginKind", "builtin_dir", "check_plugin_name", "plugin_dirs", "plugin_file_kind",
           "read_plugin_yaml", "unrecognized_files", "unrecognized_note", "yaml_files"]
