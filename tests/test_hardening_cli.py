"""The command line takes options as written and numbers as they look.

Parsing only: every case here stops in argparse (exit 2, one line naming the flag) or in the
first checks of a handler, before any model, file or server is touched.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from eft_eval.cli import build_parser, main


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the command tree with its command path (`("eft-eval", "bench", "serve")`)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def command_tree() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return list(_walk(build_parser(), ("eft-eval",)))


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    return int(raised.value.code or 0)


# ---------------------------------------------------------------------------------------------
# Abbreviated options


def test_every_parser_refuses_abbreviations() -> None:
    tree = command_tree()
    # The walk reaches the second level (bench, analyze and human-study groups), not only the top.
    paths = {path for path, _ in tree}
    assert {("eft-eval", "bench", "serve"), ("eft-eval", "analyze", "compare"),
            ("eft-eval", "human-study", "prepare")} <= paths
    assert [path for path, parser in tree if parser.allow_abbrev] == []


@pytest.mark.parametrize("argv, abbreviation", [
    (["judge", "--input", "a.jsonl", "--output", "out", "--model", "gpt-4o"], "--model"),  # --model-label
    (["generate", "--model", "m", "--prompts", "p.txt"], "--prompts"),  # --prompts-file
    (["generate", "--model", "m", "--prompt", "hi", "--max-n", "5"], "--max-n"),  # --max-new-tokens
    (["demo", "--out", "elsewhere"], "--out"),  # --output
    (["bench", "judge", "--scaling", "5"], "--scaling"),  # --scaling-n / --scaling-repeats: still refused
    (["analyze", "compare", "a", "b", "--n-res", "10"], "--n-res"),  # --n-resamples
], ids=["judge --model", "generate --prompts", "generate --max-n", "demo --out", "bench", "analyze"])
def test_an_abbreviated_option_is_an_error(argv: list[str], abbreviation: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(argv) == 2
    assert f"unrecognized arguments: {abbreviation}" in capsys.readouterr().err


def test_serve_max_n_is_its_own_flag() -> None:
    # `serve` has a real `--max-n`; it must keep working as written.
    args = build_parser().parse_args(["serve", "--model", "m", "--max-n", "4"])
    assert args.max_n == 4
