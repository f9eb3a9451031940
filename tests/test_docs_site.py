"""The documentation site: its command-line reference is generated from the real parser and covers
every command; every page is in the navigation; no document points at the issue tracker.

`make docs` (part of `make lint`) builds the site with `mkdocs build --strict`; these tests check
what a build would not: that the generated reference misses no sub-command or flag.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "scripts" / "docs_cli_reference.py"


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_cli_reference", HOOK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def walk(parser: argparse.ArgumentParser,
         path: tuple[str, ...] = ("eft-eval",)) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command words, parser) of the tree, found here independently of the hook's own walk."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


def sections(markdown: str) -> dict[str, str]:
    """`## heading` -> the text under it."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def check_covers(parser: argparse.ArgumentParser, markdown: str) -> list[tuple[str, ...]]:
    by_heading = sections(markdown)
    found = list(walk(parser))
    for path, sub in found:
        heading = " ".join(path)
        assert heading in by_heading, f"`{heading}` has no section in the command-line reference"
        for action in sub._actions:
            for option in action.option_strings:
                assert option in by_heading[heading], f"`{heading} {option}` is missing from its section"
        if len(path) > 1:
            assert f"(#{'-'.join(path)})" in markdown, f"`{heading}` is not linked from the command table"
    return [path for path, _ in found]


def test_the_cli_reference_covers_every_sub_command_and_flag() -> None:
    from eft_eval.cli import build_parser

    hook = load_hook()
    paths = check_covers(build_parser(), hook.cli_reference_markdown())
    # The walk went into the nested groups, not only the first level.
    assert {("eft-eval", "run"), ("eft-eval", "analyze", "tv"), ("eft-eval", "bench", "judge"),
            ("eft-eval", "human-study", "prepare"), ("eft-eval", "serve")} <= set(paths)


def test_the_cli_reference_is_generated_from_the_parser_it_is_given() -> None:
    """A command and a flag added to the parser appear in the next build, with no page edited."""
    from eft_eval.cli import build_parser

    hook = load_hook()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    added = subparsers.add_parser("brand-new", help="a command added after the docs were written")
    nested = added.add_subparsers(dest="what").add_parser("deeper", help="one level further")
    nested.add_argument("--brand-new-flag", help="a flag no page mentions")
    markdown = hook.cli_reference_markdown(parser)
    check_covers(parser, markdown)
    assert "--brand-new-flag" in sections(markdown)["eft-eval brand-new deeper"]
    assert "a command added after the docs were written" in markdown


def test_the_site_navigation_lists_every_page_and_only_pages_that_exist() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [page for item in node for page in pages(item)]
        if isinstance(node, dict):
            return [page for value in node.values() for page in pages(value)]
        return []

    nav = pages(config["nav"])
    generated = {load_hook().PAGE}
    on_disk = {path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs").rglob("*.md")}
    assert on_disk - set(nav) == set(), "pages missing from mkdocs.yml's nav"
    assert set(nav) - on_disk - generated == set(), "nav entries with no page"
    assert any("docs_cli_reference.py" in hook for hook in config["hooks"])


def test_no_document_names_an_issue_number() -> None:
    documents = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for path in documents:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            assert not re.search(r"\bissue\s+#?\d+", line, flags=re.IGNORECASE), f"{path.name}:{number}: {line}"
