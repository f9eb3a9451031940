"""`eft-eval serve --help` documents the command: a description, and each flag what it does and its default."""

from __future__ import annotations

import argparse
import re

import pytest

from eft_eval.cli import build_parser, main


def serve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    (subparsers,) = (action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return subparsers.choices["serve"]


def test_serve_help_has_a_description_and_every_flag_a_help_and_its_default(
        capsys: pytest.CaptureFixture[str]) -> None:
    parser = serve_parser()
    assert parser.description and "OpenAI" in parser.description
    flags = [action for action in parser._actions if action.option_strings and action.dest != "help"]
    assert len(flags) >= 15
    for action in flags:
        flag = action.option_strings[0]
        assert action.help, f"{flag} has no help"
        if action.required:
            assert "required" in action.help, flag
            continue
        assert "default" in action.help, f"{flag}: its help does not give its default"
        if isinstance(action.default, (int, float)):  # the default the help gives is the real one
            shown = re.search(r"default:? (\d+(?:\.\d+)?)(?=[ ,;:)])", action.help)
            assert shown is not None and float(shown.group(1)) == action.default, f"{flag}: {action.help}"
        elif action.default is not None:
            assert f"default {action.default}" in action.help, f"{flag}: {action.help}"
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert parser.description.split()[0] in out and "MAX_BATCH_SIZE" not in out  # short metavars
