"""The command line takes options as written and numbers as they look.

Parsing only: every case here stops in argparse (exit 2, one line naming the flag) or in the
first checks of a handler, before any model, file or server is touched.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from eft_eval.cli import build_parser, main


def _walk(parser: argparse.ArgumentParser,
          path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
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


# ---------------------------------------------------------------------------------------------
# Numeric flags: finite and within range, refused by argparse in one line (exit 2)


def _numeric_flags() -> list[tuple[tuple[str, ...], list[str]]]:
    """(command path, option strings) of every option of the tree whose value is a number."""
    return [(path[1:], action.option_strings) for path, parser in command_tree() for action in parser._actions
            if action.option_strings and getattr(action.type, "__name__", None) in ("int", "float")]


def test_no_flag_takes_a_plain_int_or_float() -> None:
    # int() and float() take nan, inf and any sign: every number goes through parsing.number_arg.
    plain = [(path, action.option_strings) for path, parser in command_tree() for action in parser._actions
             if action.type in (int, float)]
    assert plain == []


def test_every_numeric_flag_refuses_nan(capsys: pytest.CaptureFixture[str]) -> None:
    flags = _numeric_flags()
    assert len(flags) > 90  # the walk found them (every command's, the shared judge and bootstrap flags too)
    accepted = []
    for path, names in flags:
        # A bad value stops argparse at the flag, before it checks required arguments.
        if _exit_code([*path, names[0], "nan"]) != 2:
            accepted.append((path, names))
        err = capsys.readouterr().err
        assert f"argument {'/'.join(names)}:" in err and "'nan' is not a" in err, (path, names, err)
    assert accepted == []


REFUSED = [
    # Values a user plausibly mistypes: not a number, out of range.
    (["generate", "--model", "m", "--prompt", "q", "--temperature", "nan"], "--temperature"),
    (["generate", "--model", "m", "--prompt", "q", "--temperature", "-1"], "--temperature"),
    (["generate", "--model", "m", "--prompt", "q", "--top-p", "nan"], "--top-p"),
    (["generate", "--model", "m", "--prompt", "q", "--top-p", "1.5"], "--top-p"),
    (["generate", "--model", "m", "--prompt", "q", "--top-p", "0"], "--top-p"),
    (["generate", "--model", "m", "--prompt", "q", "--top-k", "-3"], "--top-k"),
    (["generate", "--model", "m", "--prompt", "q", "--batch-size", "0"], "--batch-size"),
    (["generate", "--model", "m", "--prompt", "q", "--batch-size", "-1"], "--batch-size"),
    (["run", "demo", "--model", "m", "--batch-size", "0"], "--batch-size"),
    (["judge", "--input", "a.jsonl", "--output", "o", "--timeout", "nan"], "--timeout"),
    (["judge", "--input", "a.jsonl", "--output", "o", "--timeout", "0"], "--timeout"),
    (["judge", "--input", "a.jsonl", "--output", "o", "--batch-poll-interval", "nan"], "--batch-poll-interval"),
    (["judge", "--input", "a.jsonl", "--output", "o", "--budget", "inf"], "--budget"),
    (["judge", "--input", "a.jsonl", "--output", "o", "--budget", "-1"], "--budget"),
    (["judge", "--input", "a.jsonl", "--output", "o", "--limit", "-1"], "--limit"),
    (["judge", "--input", "a.jsonl", "--output", "o", "--concurrency", "0"], "--concurrency"),
    (["serve", "--model", "m", "--batch-wait-ms", "nan"], "--batch-wait-ms"),
    (["serve", "--model", "m", "--batch-wait-ms", "inf"], "--batch-wait-ms"),
    (["serve", "--model", "m", "--batch-wait-ms", "1e300"], "--batch-wait-ms"),
    (["serve", "--model", "m", "--retry-after-s", "3601"], "--retry-after-s"),
    (["serve", "--model", "m", "--retry-after-s", "nan"], "--retry-after-s"),
    (["serve", "--model", "m", "--max-prefill-tokens", "inf"], "--max-prefill-tokens"),
    (["serve", "--model", "m", "--max-waiting", "-1"], "--max-waiting"),
    (["bench", "serve", "--load", "nan"], "--load"),
    (["bench", "serve", "--load", "0"], "--load"),
    (["serve", "--model", "m", "--port", "99999"], "--port"),
    (["serve", "--model", "m", "--port", "-1"], "--port"),
    (["serve", "--model", "m", "--port", "0"], "--port"),
    (["analyze", "compare", "a", "b", "--seed", "-1"], "--seed"),
    (["analyze", "compare", "a", "b", "--seed", str(2**32)], "--seed"),
    (["analyze", "compare", "a", "b", "--confidence", "1"], "--confidence"),
    (["analyze", "compare", "a", "b", "--n-resamples", "1"], "--n-resamples"),
    (["human-study", "prepare", "--samples", "s.jsonl", "--n", "5", "--out", "p", "--error-threshold", "nan"],
     "--error-threshold"),
    (["human-study", "prepare", "--samples", "s.jsonl", "--n", "5", "--out", "p", "--error-threshold", "inf"],
     "--error-threshold"),
    (["human-study", "prepare", "--samples", "s.jsonl", "--n", "5", "--out", "p", "--target-error-rate", "nan"],
     "--target-error-rate"),
    (["human-study", "prepare", "--samples", "s.jsonl", "--n", "5", "--out", "p", "--target-error-rate", "1.5"],
     "--target-error-rate"),
    # At least one flag of every other command with numbers.
    (["sweep", "demo_frontier", "--limit", "0"], "--limit"),
    (["demo", "--frontier-limit", "-1"], "--frontier-limit"),
    (["analyze", "tv", "--model", "m", "--top", "-1"], "--top"),
    (["analyze", "scaling", "--small-ft", "a", "--large-ft", "b", "--n-resamples", "0"], "--n-resamples"),
    (["analyze", "frontier", "a", "--x", "h", "--y", "g", "--confidence", "nan"], "--confidence"),
    (["analyze", "agreement", "a", "b", "--judge", "f", "--threshold", "nan"], "--threshold"),
    (["human-study", "serve", "project", "--port", "70000"], "--port/-p"),
    (["human-study", "adjudicate", "project", "--out", "p", "--annotators-per-item", "0"], "--annotators-per-item"),
    (["human-study", "report", "project", "--seed", "-5"], "--seed"),
    (["bench", "decode", "--tokens", "0"], "--tokens"),
    (["bench", "speculative", "--prompts", "99"], "--prompts"),
    (["bench", "speculative", "--base-noise", "nan"], "--base-noise"),
    (["bench", "judge", "--latency", "inf"], "--latency"),
    (["bench", "sweep", "--points", "1"], "--points"),
    (["bench", "serve", "--batch-size", "-1"], "--batch-size"),
]


@pytest.mark.parametrize("argv, flag", REFUSED, ids=[" ".join(argv[:1] + argv[-2:]) for argv, _ in REFUSED])
def test_a_bad_number_is_one_line_naming_the_flag(argv: list[str], flag: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("eft-eval") and f"argument {flag}: {argv[-1]!r}" in last, err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, attribute, value", [
    (["serve", "--model", "m", "--batch-wait-ms", "0"], "batch_wait_ms", 0),
    (["serve", "--model", "m", "--port", "65535", "--speculative-block", "0"], "port", 65535),
    (["serve", "--model", "m", "--retry-after-s", "3600", "--max-waiting", "0"], "retry_after_s", 3600),
    (["bench", "serve", "--batch-size", "0"], "batch_size", 0),  # 0: as many as --clients
    (["bench", "decode", "--threads", "0"], "threads", 0),  # 0: torch's default
    (["generate", "--model", "m", "--temperature", "0", "--top-p", "1", "--top-k", "0"], "temperature", 0),
    (["analyze", "compare", "a", "b", "--seed", str(2**32 - 1)], "seed", 2**32 - 1),
    (["analyze", "agreement", "a", "b", "--judge", "f", "--threshold", "-2.5"], "threshold", -2.5),
    (["judge", "--input", "a", "--output", "o", "--budget", "0", "--max-retries", "0"], "budget", 0),
    (["demo", "--frontier-limit", "0"], "frontier_limit", 0),
])
def test_the_edges_of_each_range_still_parse(argv: list[str], attribute: str, value: float) -> None:
    assert getattr(build_parser().parse_args(argv), attribute) == value


# ---------------------------------------------------------------------------------------------
# --gen-kwargs: lm-eval parses the text leniently, so it is checked as the sampler will read it

BAD_GEN_KWARGS = [
    ("temperature", "'temperature' is not key=value (expected key=value,key=value,...)"),
    ("do_sample=true,temperature", "'temperature' is not key=value"),
    ("temperature=nan",
     "temperature='nan' is not a finite number (expected 0 for greedy or a finite number >= 1.2e-38)"),
    ("temperature=-1,do_sample=true", "temperature='-1' is out of range"),
    ("top_p=1.5", "top_p='1.5' is out of range (expected a finite number > 0 and <= 1)"),
    ("top_p=0", "top_p='0' is out of range"),
    ("top_k=-3", "top_k='-3' is out of range (expected a whole number >= 0)"),
    ("max_gen_toks=0", "max_gen_toks='0' is out of range"),
    ("do_sample=maybe", "do_sample='maybe' is not a boolean"),
    # lm-eval keeps the space: ` temperature` is an unknown key, ignored, and sampling runs at 1.0.
    ("do_sample=true, temperature=0.7", "key ' temperature' is not a plain name"),
    # lm-eval's dict keeps the last.
    ("temperature=0.5,temperature=1", "temperature is given twice; give it once"),
]


@pytest.mark.parametrize("command", [["run", "demo", "--model", "m"], ["sweep", "demo_frontier"]], ids=["run", "sweep"])
@pytest.mark.parametrize("text, message", BAD_GEN_KWARGS, ids=[text for text, _ in BAD_GEN_KWARGS])
def test_bad_gen_kwargs_are_one_line(command: list[str], text: str, message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code([*command, "--gen-kwargs", text]) == 2
    err = capsys.readouterr().err
    assert f"argument --gen-kwargs: {message}" in err and "Traceback" not in err, err


@pytest.mark.parametrize("text", ["do_sample=true,temperature=0.7", "temperature=0", "top_p=1,top_k=0,",
                                  "until=###,do_sample=yes", "max_gen_toks=64"])
def test_good_gen_kwargs_pass_unchanged(text: str) -> None:
    assert build_parser().parse_args(["run", "demo", "--model", "m", "--gen-kwargs", text]).gen_kwargs == text


def test_run_checks_gen_kwargs_from_any_caller_before_loading_a_model() -> None:
    # A study file or a library caller reaches `run_task` without argparse.
    from eft_eval.errors import EFTEvalError
    from eft_eval.pipeline import RunConfig, run_task

    with pytest.raises(EFTEvalError, match=r"^gen_kwargs 'temperature': 'temperature' is not key=value"):
        run_task(RunConfig(task="demo", model="no/such-model", gen_kwargs="temperature"))
    with pytest.raises(EFTEvalError, match=r"max_gen_toks=16 and --max-new-tokens 8 both set the response length"):
        run_task(RunConfig(task="demo", model="no/such-model", gen_kwargs="max_gen_toks=16", max_new_tokens=8))


# ---------------------------------------------------------------------------------------------
# Numbers read leniently by int() and float()

@pytest.mark.parametrize("argv, flag, value", [
    (["analyze", "compare", "a", "b"], "--seed", "1_000"),  # int() reads 1000
    (["judge", "--input", "a", "--output", "o"], "--limit", "١٢"),  # int() reads Arabic-Indic digits: 12
    (["generate", "--model", "m"], "--max-new-tokens", "３"),  # and full-width ones
    (["judge", "--input", "a", "--output", "o"], "--timeout", "1_0.5"),  # float() reads 10.5
    (["generate", "--model", "m"], "--temperature", "1e-320"),  # 0 in float32: every probability NaN
    (["generate", "--model", "m"], "--temperature", "1e-40"),
    (["bench", "speculative"], "--temperature", "1e-45"),
], ids=["underscore", "arabic-indic", "full-width", "float underscore", "subnormal", "below float32", "bench"])
def test_numbers_are_plain_ascii_and_usable(argv: list[str], flag: str, value: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code([*argv, flag, value]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}: {value!r} is " in last


def test_what_a_number_plainly_is_still_parses() -> None:
    args = build_parser().parse_args(["generate", "--model", "m", "--seed", " 5", "--temperature", "-0",
                                      "--top-p", ".5", "--max-new-tokens", "+7"])
    assert (args.seed, args.top_p, args.max_new_tokens) == (5, 0.5, 7)
    assert args.temperature == 0 and str(args.temperature) == "0.0"  # not -0.0
    assert build_parser().parse_args(["generate", "--model", "m", "--temperature", "1e-30"]).temperature == 1e-30


def test_settings_share_the_plain_number_rule() -> None:
    # Specs, study files and --set values use parse_number too.
    from eft_eval.errors import EFTEvalError
    from eft_eval.parsing import parse_gen_kwargs, parse_number

    with pytest.raises(EFTEvalError, match=r"^spec 'beta=1_000': beta='1_000' is not written with plain digits"):
        parse_number("1_000", "beta", "spec 'beta=1_000'")
    assert parse_number(-0.0, "beta", "spec") == 0 and str(parse_number("-0.0", "beta", "spec")) == "0.0"
    with pytest.raises(EFTEvalError, match=r"temperature='1e-320' is too small to divide by in float32"):
        parse_gen_kwargs("do_sample=true,temperature=1e-320", "--gen-kwargs")


@pytest.mark.parametrize("command", [["judge", "--input", "a", "--output", "o"], ["run", "demo", "--model", "m"],
                                     ["sweep", "demo_frontier"]], ids=["judge", "run", "sweep"])
@pytest.mark.parametrize("names", ["", " ", ",", " , "])
def test_an_empty_judge_list_is_not_the_default(command: list[str], names: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # `--judges "$JUDGES"` with the variable unset meant every judge for `judge` (each one paid for).
    assert _exit_code([*command, "--judges", names]) == 2
    assert f"argument --judges: {names!r} names nothing" in capsys.readouterr().err
    assert build_parser().parse_args([*command, "--judges", "factuality, harm"]).judges == "factuality, harm"


# ---------------------------------------------------------------------------------------------
# Defaults: stated once, by the configuration dataclasses


def _parsers() -> dict[str, argparse.ArgumentParser]:
    return {" ".join(path[1:]): parser for path, parser in command_tree()}


def test_setting_flags_default_to_their_configuration_field() -> None:
    """`run`, `judge` and `sweep` take each setting's default from `RunConfig`/`JudgeConfig` (a field's
    default changed there changes the flag); `sweep`'s run settings default to None, so the study's
    values stand unless a flag is given."""
    from eft_eval.judging import JUDGE_SETTINGS, JudgeConfig
    from eft_eval.pipeline import RUN_SETTINGS, RunConfig

    parsers = _parsers()
    for command in ("run", "judge", "sweep"):
        for setting in JUDGE_SETTINGS:
            assert parsers[command].get_default(setting.dest) == setting.value_of(JudgeConfig()), (command, setting)
    for setting in RUN_SETTINGS:
        assert parsers["run"].get_default(setting.dest) == setting.value_of(RunConfig(task="")), setting
        assert parsers["sweep"].get_default(setting.dest) is None, setting


def test_help_shows_the_configuration_defaults() -> None:
    text = " ".join(_parsers()["run"].format_help().split())
    for shown in ("most requests in flight (default 16)", "seconds per request (default 120)",
                  "prompts per decoding batch (default 8)", "seeds sampling (default 0)",
                  "seconds between two polls of a batch (default 30)", "(default live)"):
        assert shown in text
    sweep = " ".join(_parsers()["sweep"].format_help().split())
    assert "--seed SEED selects the task's documents and seeds sampling --batch-size" in sweep  # no default shown
