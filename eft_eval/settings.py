"""One table row per setting: its flag, its study-file key and its config field.

A setting reaches a configuration three ways: a command-line flag (`eft-eval run --judge-model X`),
a study file (`judge: {judge_model: X}`), and back again as the flag of a listed command
(`eft-eval sweep --list`). Each row names the setting once for all three, so a new setting is one
row, not three hand-written mappings that drift apart:

    Setting("local_model", "local.model", study=True)
    # flag --local-model (argparse dest local_model), study key local_model,
    # config field JudgeConfig.local.model
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Setting:
    """One setting's names, and how its value reads from a flag or study file and back."""

    dest: str
    """The flag's argparse dest; the flag is `--dest-with-dashes`, the study key is `dest` too."""
    field: str
    """Where it goes in the configuration: a field name, or `group.field` for a nested group."""
    study: bool = False
    """Whether a study file may set it (and `sweep --list` writes it into each command)."""
    parse: Callable[[Any], Any] | None = None
    """Flag or study value -> field value (None stays None)."""
    render: Callable[[Any], list[str]] | None = None
    """Field value -> the words after the flag; default `str(value)` (a list: one word each)."""
    help: str = ""
    """The flag's help; `add_arguments` adds the default."""
    argument: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """argparse's other keywords for the flag: `type`, `choices`, `metavar`, `nargs`, `action`."""

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")

    def value_of(self, config: object) -> Any:
        value = config
        for name in self.field.split("."):
            value = getattr(value, name)
        return value

    def argv(self, value: Any) -> list[str]:
        """The flag and its words for `value`; a boolean switch is the flag alone."""
        if value is True:
            return [self.flag]
        if self.render is not None:
            return [self.flag, *self.render(value)]
        if isinstance(value, (list, tuple)):
            return [self.flag, *map(str, value)]
        return [self.flag, str(value)]


def add_arguments(group: Any, settings: Iterable[Setting], defaults: object | None = None,
                  help: Mapping[str, str] | None = None) -> None:
    """Each setting's flag in `group` (an argparse parser or group). Its default is its field's value
    in `defaults`, a configuration built with its own defaults, so a default is stated once, in the
    dataclass; without `defaults` every flag defaults to None (not given: a study's value stands).
    `help` replaces the help of some settings (by dest) where a command means something else."""
    for setting in settings:
        default = None if defaults is None else setting.value_of(defaults)
        text = (help or {}).get(setting.dest, setting.help)
        if default is not None and default is not False and default != [] and default != "":
            text += f" (default {default:g})" if isinstance(default, float) else f" (default {default})"
        group.add_argument(setting.flag, default=default, help=text, **setting.argument)


def parsed(settings: Iterable[Setting], values: Mapping[str, Any]) -> dict[str, Any]:
    """{dest: value as its field takes it} for every setting (a flag not given: None)."""
    found = {}
    for setting in settings:
        value = values.get(setting.dest)
        found[setting.dest] = setting.parse(value) if value is not None and setting.parse is not None else value
    return found


def _nested(settings: Iterable[Setting], values: Mapping[str, Any]) -> dict[str, Any]:
    """{field or group: value or {field: value}} for the settings whose dest is in `values`."""
    found: dict[str, Any] = {}
    for setting in settings:
        if setting.dest not in values:
            continue
        value = values[setting.dest]
        if value is not None and setting.parse is not None:
            value = setting.parse(value)
        *groups, name = setting.field.split(".")
        node = found
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    return found


def build(cls: type[T], settings: Iterable[Setting], values: Mapping[str, Any], **fields: Any) -> T:
    """A `cls` from `values` (by dest) through the table, plus other top-level `fields`; a setting
    missing from `values`, or None there (a flag not given), keeps its default."""
    given = {dest: value for dest, value in values.items() if value is not None}
    return _construct(cls, {**_nested(settings, given), **fields})


def _construct(cls: type[T], kwargs: dict[str, Any]) -> T:
    # A nested group is a field whose default is made by its dataclass (`field(default_factory=...)`).
    groups: dict[str, Any] = {f.name: f.default_factory for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                              if isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory)}
    return cls(**{name: _construct(groups[name], value) if name in groups and isinstance(value, dict) else value
                  for name, value in kwargs.items()})


def with_values(config: T, settings: Iterable[Setting], values: Mapping[str, Any]) -> T:
    """`config` with the settings in `values` (by dest) replaced; the others as they were."""
    return _replace(config, _nested(settings, values))


def _replace(config: T, changes: dict[str, Any]) -> T:
    if not changes:
        return config
    return dataclasses.replace(config, **{  # type: ignore[type-var]
        name: _replace(getattr(config, name), value) if isinstance(value, dict)
        and dataclasses.is_dataclass(getattr(config, name)) else value
        for name, value in changes.items()})


def to_argv(config: object, settings: Sequence[Setting], defaults: object | None = None) -> list[str]:
    """The flags that give `config` its values: every set value (not None, empty or False), and
    with `defaults`, only those that differ from it."""
    args: list[str] = []
    for setting in settings:
        value = setting.value_of(config)
        if value is None or value is False or value == []:
            continue
        if defaults is not None and value == setting.value_of(defaults):
            continue
        args += setting.argv(value)
    return args


__all__ = ["Setting", "add_arguments", "build", "parsed", "to_argv", "with_values"]
