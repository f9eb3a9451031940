"""Every command the documentation shows parses: each `eft-eval ...` line of a fenced shell block in
README.md, docs/ and the plugin folders' READMEs is parsed by the real `eft-eval` parser (flags, types,
choices, a complete sub-command), without running it (many need GPUs, API keys or hours).
`eft-eval lm-eval ...` lines (also behind `accelerate launch ... -m eft_eval.cli`) go through
lm-eval's own parser, which is what they reach. Each `make X` must be a Makefile target.

Generic on purpose: a new documented command is checked the moment it is written.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHELL_FENCES = {"bash", "sh", "shell", "console", "zsh", ""}
PLACEHOLDER = "name=value"
COMMAND_ENDS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}


def documents() -> list[Path]:
    candidates = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    candidates += [ROOT / folder / "README.md" for folder in ("tasks", "judges", "human_study")]
    return [path for path in candidates if path.is_file()]


def shell_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, logical line) of every fenced shell block; `\\` continuations joined."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = stripped[3:].strip().lower() if fence is None else None
            pending = None
            continue
        if fence is None or fence not in SHELL_FENCES:
            continue
        start, text = pending if pending else (number, "")
        text += stripped
        if text.endswith("\\"):
            pending = (start, text[:-1] + " ")
            continue
        pending = None
        lines.append((start, text))
    return lines


def words(line: str) -> list[str]:
    """The first simple command of a shell line: comments, env assignments and pipes/redirects removed."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    tokens: list[str] = []
    for token in lexer:
        if token in COMMAND_ENDS:
            break
        tokens.append(token)
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        tokens.pop(0)
    # `...` is the docs' "any value here" (`--model ...`); a `key=value` stands in for it.
    return [PLACEHOLDER if token == "..." else token for token in tokens]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for every documented eft-eval or make command."""
    found = []
    for path in documents():
        for number, line in shell_lines(path):
            argv = words(line)
            if "-m" in argv and "eft_eval.cli" in argv:  # accelerate launch ... -m eft_eval.cli ARGS
                argv = ["eft-eval", *argv[argv.index("eft_eval.cli") + 1:]]
            if argv and argv[0] in {"eft-eval", "make"}:
                found.append((f"{path.relative_to(ROOT)}:{number}", argv))
    return found


COMMANDS = documented_commands()


def test_the_readme_documents_commands_and_they_are_found() -> None:
    """The extraction itself works: the README's first lines (the two `make` commands) and its main job."""
    argvs = [argv for _, argv in COMMANDS]
    assert ["make", "demo"] in argvs and ["make", "test"] in argvs
    assert any(argv[:2] == ["eft-eval", "run"] for argv in argvs)
    assert words('FOO=1 eft-eval run demo --limit 2 | tee log  # comment') == ["eft-eval", "run",
                                                                               "demo", "--limit", "2"]


def parse_lm_eval(argv: list[str]) -> None:
    """lm-eval's own parser, as `eft-eval lm-eval` hands the arguments over (no evaluation is run)."""
    from lm_eval._cli import HarnessCLI

    saved = sys.argv
    sys.argv = ["lm-eval", *argv]
    try:
        args = HarnessCLI().parse_args()
    finally:
        sys.argv = saved
    assert getattr(args, "tasks", None), "no --tasks"


def check_parses(where: str, argv: list[str]) -> None:
    """Fail the test with one line naming the document line if `argv` does not parse."""
    if argv[0] == "make":
        makefile = (ROOT / "Makefile").read_text()
        targets = set(re.findall(r"^([A-Za-z0-9_.-]+):", makefile, flags=re.MULTILINE))
        settings = {arg.split("=", 1)[0] for arg in argv[1:] if "=" in arg}  # `make test VAR=VALUE`
        variables = set(re.findall(r"^([A-Za-z0-9_]+)\s*[?:]?=", makefile, flags=re.MULTILINE))
        assert settings <= variables, f"{where}: {shlex.join(argv)}: no such Makefile variable"
        wanted = {arg for arg in argv[1:] if "=" not in arg}
        assert wanted <= targets, f"{where}: {shlex.join(argv)}: no such Makefile target"
        return

    from eft_eval.cli import build_parser

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            args = build_parser().parse_args(argv[1:])
            if args.command == "lm-eval":
                parse_lm_eval(args.lm_eval_args)
    except SystemExit as exit:
        pytest.fail(f"{where}: `{shlex.join(argv)}` does not parse (exit {exit.code}): {stderr.getvalue().strip()}")
    assert isinstance(args, argparse.Namespace)
    assert getattr(args, "handler", None), f"{where}: `{shlex.join(argv)}` names no complete command"


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_parses(where: str, argv: list[str]) -> None:
    check_parses(where, argv)


@pytest.mark.parametrize("line", [
    "eft-eval run hh --presett llama2:up",          # a misspelt flag
    "eft-eval human-study serve study --port eighty",  # a value of the wrong type
    "eft-eval bench",                                # an incomplete command
    "eft-eval lm-eval --model eft --model_args ...",  # lm-eval's parser: no --tasks
    "make tests",                                     # no such target
])
def test_a_broken_command_is_caught(line: str) -> None:
    with pytest.raises((pytest.fail.Exception, AssertionError)):
        check_parses("example", words(line))
