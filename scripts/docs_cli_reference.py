"""MkDocs hook: the command-line reference page, written at build time from eft-eval's real parser.

`mkdocs.yml` lists this file under `hooks:`. On every build, `on_files` walks `eft_eval.cli.build_parser()`
(every command and sub-command, however deeply nested) and adds `reference/cli.md`, a page that exists
only in the built site, so the reference cannot drift from the code: a new flag or command appears in
the next build. `tests/test_docs_site.py` checks that every sub-command of the parser is on the page.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PAGE = "reference/cli.md"
HELP_WIDTH = 100  # help text is wrapped as in a 100-column terminal, whatever the build machine's is

Command = tuple[tuple[str, ...], argparse.ArgumentParser, str]


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("eft-eval",)) -> Iterator[Command]:
    """(words of the command, its parser, its one-line help) for `parser` and every command below it."""
    yield path, parser, parser.description or ""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of a command already listed
                continue
            seen.add(id(sub))
            for sub_path, sub_parser, sub_help in commands(sub, (*path, name)):
                yield sub_path, sub_parser, sub_help if sub_path != (*path, name) else helps.get(name, sub_help)


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    """argparse wraps help to the terminal's width ($COLUMNS); fix it so every build writes the same page."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def anchor(path: tuple[str, ...]) -> str:
    """The heading id MkDocs gives `## eft-eval a b` (its default slugify: lower case, spaces to `-`)."""
    return "-".join(path).lower()


def cli_reference_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole reference page: a table of every command, then each command's `--help`."""
    if parser is None:
        from eft_eval.cli import build_parser

        parser = build_parser()
    found = list(commands(parser))
    lines = [
        "# Command-line reference",
        "",
        "Every `eft-eval` command and sub-command with its `--help`, generated from the parser itself "
        "each time the site is built, so it always matches the installed version. Options of the top "
        "command (`-v`, `--version`) go before the sub-command. `eft-eval lm-eval` hands every argument "
        "to lm-eval's own command line (`eft-eval lm-eval --help` prints lm-eval's help).",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    for path, _, help_text in found[1:]:
        lines.append(f"| [`{' '.join(path)}`](#{anchor(path)}) | {help_text.replace('|', '&#124;')} |")
    with _columns(HELP_WIDTH):
        for path, sub, _ in found:
            lines += ["", f"## {' '.join(path)}", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(lines) + "\n"


def on_files(files: Any, config: Any) -> Any:
    """MkDocs event: add the generated page (it is never written into `docs/`)."""
    from mkdocs.structure.files import File

    root = str(Path(config["config_file_path"]).resolve().parent)
    if root not in sys.path:  # document this checkout's eft_eval, not whichever one is installed
        sys.path.insert(0, root)
    files.append(File.generated(config, PAGE, content=cli_reference_markdown()))
    return files
