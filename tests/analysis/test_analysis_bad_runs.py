"""Analyses of finished runs given what a careless or hostile user would give them: bare samples
files whose settings live only in the samples, runs that did not answer the same prompts,
bootstraps too large to hold, and numbers that are not what they look like. Each is refused in
one line naming the file and the value, or answered correctly; never a wrong table with exit 0."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from analysis_helpers import model_spec, write_run

from eft_eval.cli import main
from eft_eval.models import parse_spec

EFT = "base=base-7b,ft=ft-small,ref=ref-small"
INTERPOLATION = "base=base-7b,ft=helpful,ft2=harmless,ref=ref-small"


def _spec(text: str) -> str:
    """The spec string `eft-eval run` writes into each sample's `model` field."""
    return parse_spec(text).to_string()


def bare_file(tmp_path: Path, name: str, model: str, scores: dict[str, Sequence[Any]]) -> Path:
    """A judged samples file on its own (no run.json beside it), as `eft-eval run` wrote its samples."""
    folder = write_run(tmp_path / "folders" / name, scores, model=model)
    path = tmp_path / f"{name}.jsonl"
    shutil.copyfile(folder / "samples.jsonl", path)
    return path


def _rewrite(path: Path, change: Any) -> None:
    """Apply `change(index, row)` to every sample of `path`."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for index, row in enumerate(rows):
        change(index, row)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["analyze", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


# -- settings of bare samples files --------------------------------------------------------------

def test_top_p_of_bare_samples_files_reads_each_spec_from_the_model_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [bare_file(tmp_path, name, _spec(EFT + suffix), {"factuality": [1.0, 0.0, 2.0]})
             for name, suffix in (("a", ""), ("b", ",top_p_weights=0.9"), ("c", ",top_p_weights=0.8"),
                                  ("d", ",top_p_weights=0.5"))]
    code, out, _ = _cli(["top-p", *map(str, paths), "-o", str(tmp_path / "out"), "--json"], capsys)
    assert code == 0
    assert [row["top_p_weights"] for row in json.loads(out)["rows"]] == [None, 0.9, 0.8, 0.5]


def test_top_p_refuses_a_bare_file_whose_setting_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    known = bare_file(tmp_path, "known", _spec(EFT + ",top_p_weights=0.9"), {"factuality": [1.0, 0.0]})
    # A label (judge --model-label) says nothing of top_p_weights: "no filtering" would be a guess.
    label = bare_file(tmp_path, "label", "my-top-p-run", {"factuality": [1.0, 0.0]})
    code, _, err = _cli(["top-p", str(known), str(label), "-o", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, str(label), "top_p_weights", "'my-top-p-run'", "run.json")
    assert not (tmp_path / "out" / "top_p.json").exists()


def test_frontier_of_bare_samples_files_reads_alpha_and_base(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    paths = [bare_file(tmp_path, f"run{i}", _spec(f"{INTERPOLATION},alpha={alpha}"),
                       {"helpfulness": [alpha, 2 * alpha, 1.0], "harm": [1.0, alpha, 0.5]})
             for i, alpha in enumerate((0.0, 0.5, 1.0))]
    code, out, _ = _cli(["frontier", *map(str, paths), "--x", "helpfulness", "--y", "harm", "--n-resamples", "200",
                         "-o", str(tmp_path / "out"), "--json"], capsys)
    points = json.loads(out)["points"]
    assert code == 0 and [(p["alpha"], p["label"], p["base"]) for p in points] == [
        (0.0, "alpha=0", "base-7b"), (0.5, "alpha=0.5", "base-7b"), (1.0, "alpha=1", "base-7b")]


def test_frontier_refuses_a_bare_file_whose_alpha_is_unknown(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    known = bare_file(tmp_path, "known", _spec(f"{INTERPOLATION},alpha=0.5"),
                      {"helpfulness": [1.0, 2.0], "harm": [1.0, 0.0]})
    label = bare_file(tmp_path, "label", "alpha-0.3", {"helpfulness": [1.0, 2.0], "harm": [1.0, 0.0]})
    code, _, err = _cli(["frontier", str(known), str(label), "--x", "helpfulness", "--y", "harm", "-o",
                         str(tmp_path / "out")], capsys)
    _one_line_error(code, err, str(label), "alpha", "'alpha-0.3'")


def test_a_file_whose_samples_name_different_models_is_refused(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    mixed = bare_file(tmp_path, "mixed", _spec(EFT), {"factuality": [1.0, 0.0, 2.0, 1.0]})
    other = _spec(EFT + ",top_p_weights=0.9")
    _rewrite(mixed, lambda index, row: row.update(model=other) if index >= 2 else None)
    for args in (["top-p", str(mixed)],
                 ["scaling", "--small-ft", str(mixed), "--large-ft", str(mixed), "--up", str(mixed)]):
        code, _, err = _cli([*args, "-o", str(tmp_path / "out")], capsys)
        _one_line_error(code, err, str(mixed), "2 different models", "sample 3")


def test_the_same_spec_written_two_ways_is_one_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = bare_file(tmp_path, "same", "base=base-7b,ft=ft-small,ref=ref-small,top_p_weights=0.9",
                     {"factuality": [1.0, 0.0]})
    _rewrite(path, lambda index, row: row.update(model="ref=ref-small,ft=ft-small,base=base-7b,top_p_weights=0.90")
             if index else None)
    code, out, _ = _cli(["top-p", str(path), "-o", str(tmp_path / "out"), "--json"], capsys)
    assert code == 0 and json.loads(out)["rows"][0]["top_p_weights"] == 0.9


def test_run_json_still_wins_and_an_override_needs_no_spec(tmp_path: Path) -> None:
    from eft_eval.analysis import load_run, top_p_analysis

    folder = write_run(tmp_path / "run", {"factuality": [1.0, 0.0]},
                       spec=model_spec(top_p_weights=0.8), model="a label")
    assert top_p_analysis([load_run(folder)])["rows"][0]["top_p_weights"] == 0.8
    label = bare_file(tmp_path, "label", "a label", {"factuality": [1.0, 0.0]})
    # The caller says what the run is: nothing is guessed, nothing refused.
    assert top_p_analysis([load_run(label, "none")], top_p={"none": None})["rows"][0]["top_p_weights"] is None


def test_reading_a_spec_from_samples_does_not_load_torch(tmp_path: Path) -> None:
    path = bare_file(tmp_path, "a", _spec(EFT + ",top_p_weights=0.9"), {"factuality": [1.0, 0.0]})
    code = ("import sys\nfrom eft_eval.analysis import load_run, top_p_analysis\n"
            f"rows = top_p_analysis([load_run({str(path)!r})])['rows']\n"
            "assert rows[0]['top_p_weights'] == 0.9, rows\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# -- pairing prompts by doc_id -------------------------------------------------------------------

def _runs_with_other_prompts(tmp_path: Path, changed: Sequence[int]) -> tuple[Path, Path]:
    """Two runs scored on doc_ids 0..11; in run B the documents `changed` hold other prompts."""
    a = write_run(tmp_path / "a", {"helpfulness": [float(i % 7) for i in range(12)]})
    b = write_run(tmp_path / "b", {"helpfulness": [float(i % 5) for i in range(12)]})
    _rewrite(b / "samples.jsonl",
             lambda index, row: row.update(query=f"Other {row['query']}") if index in changed else None)
    return a, b


def test_compare_refuses_runs_whose_prompts_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _runs_with_other_prompts(tmp_path, changed=range(12))
    code, _, err = _cli(["compare", str(a), str(b), "-o", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, "12 of 12", "doc_id 0", "'Question 0?'", "'Other Question 0?'", "--only-same-prompts")
    assert not (tmp_path / "out").exists()
    a, b = _runs_with_other_prompts(tmp_path / "some", changed=[3, 5, 8])
    code, _, err = _cli(["compare", str(a), str(b), "-o", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, "3 of 12", "doc_id 3")


def test_compare_only_same_prompts_pairs_the_identical_ones_and_counts_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _runs_with_other_prompts(tmp_path, changed=[3, 5, 8])
    code, out, _ = _cli(["compare", str(a), str(b), "--only-same-prompts", "--n-resamples", "200",
                         "-o", str(tmp_path / "out")], capsys)
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert code == 0 and data["n_different_prompts"] == 3 and data["rows"][0]["n_paired"] == 9
    assert "3 prompts" in out


def test_scaling_and_frontier_refuse_runs_whose_prompts_differ(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _runs_with_other_prompts(tmp_path, changed=[2])
    code, _, err = _cli(["scaling", "--small-ft", str(a), "--large-ft", str(b), "-o", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, "1 of 12", "doc_id 2")
    for run in (a, b):
        _rewrite(run / "samples.jsonl",
                 lambda index, row: row["judgments"].update(harm=row["judgments"]["helpfulness"]))
    code, _, err = _cli(["frontier", str(a), str(b), "--x", "helpfulness", "--y", "harm", "-o", str(tmp_path / "out")],
                        capsys)
    _one_line_error(code, err, "1 of 12", "doc_id 2")


# -- the bootstrap's memory and settings ---------------------------------------------------------

def _peak_bytes(call: Any) -> int:
    """Peak memory traced while `call()` runs (numpy reports its arrays to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_bootstrap_memory_is_bounded_by_blocks_not_by_resamples() -> None:
    import numpy as np

    from eft_eval.stats import (
        BootstrapSettings,
        normalized_improvement,
        paired_difference,
        pareto_probability,
    )

    rng = np.random.default_rng(0)
    scores = rng.normal(50, 10, size=(4, 400))
    settings = BootstrapSettings(n_resamples=100_000, seed=0)
    # Drawn at once, 100,000 resamples of 400 prompts are 320 MB of indices and as much of scores.
    limit = 48 * 2**20
    assert _peak_bytes(lambda: paired_difference(scores[0], scores[1], settings)) < limit
    assert _peak_bytes(lambda: normalized_improvement(scores[0], scores[1], {"up": scores[2], "down": scores[3]},
                                                      settings)) < limit
    assert _peak_bytes(lambda: pareto_probability(scores[:2], scores[2:], True, False, settings)) < limit


def test_a_bootstrap_is_the_same_for_a_seed_and_differs_for_another() -> None:
    import numpy as np

    from eft_eval.stats import BootstrapSettings, resample_means

    matrix = np.random.default_rng(1).normal(size=(3, 301))  # odd sizes: blocks of odd length
    first = resample_means(matrix, n_resamples=7001, seed=4)
    assert first.shape == (7001, 3) and np.array_equal(first, resample_means(matrix, n_resamples=7001, seed=4))
    assert not np.array_equal(first, resample_means(matrix, n_resamples=7001, seed=5))
    assert BootstrapSettings(n_resamples=np.int64(100), seed=np.int32(3)).kwargs()["n_resamples"] == 100  # type: ignore[arg-type]


@pytest.mark.parametrize(("settings", "message"), [
    ({"n_resamples": 100_000_000}, "n_resamples=100000000 is more than 10000000"),
    ({"n_resamples": 1}, "n_resamples=1 is out of range"),
    ({"n_resamples": True}, "n_resamples=True is not a number"),
    ({"n_resamples": 99.5}, "n_resamples=99.5 is not a whole number"),
    ({"seed": -1}, "seed=-1 is out of range"),
    ({"seed": 2**40}, "seed=1099511627776 is out of range"),
    ({"confidence_level": float("nan")}, "confidence_level=nan is not a finite number"),
    ({"confidence_level": 95}, "confidence_level=95 is out of range"),
])
def test_bootstrap_settings_are_checked_in_one_line(settings: dict[str, Any], message: str) -> None:
    from eft_eval.errors import EFTEvalError
    from eft_eval.stats import BootstrapSettings, bootstrap_estimate, resample_means

    calls = [lambda: BootstrapSettings(**settings),
             lambda: bootstrap_estimate([[1.0, 2.0, 3.0]], lambda x, axis=-1: x.mean(axis=axis), **settings)]
    if "confidence_level" not in settings:  # resample_means draws; it has no interval
        calls.append(lambda: resample_means([[1.0, 2.0, 3.0]], **settings))  # type: ignore[arg-type]
    for call in calls:
        with pytest.raises(EFTEvalError, match=message) as raised:
            call()
        assert "\n" not in str(raised.value)

def test_compare_refuses_a_bootstrap_too_large_to_hold_and_a_study_a_negative_seed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", {"helpfulness": [1.0, 2.0, 3.0]})
    b = write_run(tmp_path / "b", {"helpfulness": [2.0, 2.0, 4.0]})
    code, _, err = _cli(["compare", str(a), str(b), "--n-resamples", "100000000", "-o", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, "100000000", "800 MB")
    # A sweep's study file hands its analysis settings over as they were written.
    from eft_eval.analysis import analyze_study
    from eft_eval.errors import EFTEvalError

    with pytest.raises(EFTEvalError, match="bootstrap: seed=-1 is out of range"):
        analyze_study("frontier", {"a": a, "b": b},
                      {"x": "helpfulness", "y": "helpfulness", "seed": -1}, tmp_path / "out")


# -- numbers and ids read leniently --------------------------------------------------------------

def _judged(tmp_path: Path, change: Any) -> tuple[Path, Path]:
    """Two runs on doc_ids 0..3; `change(index, row)` is applied to run B's samples."""
    a = write_run(tmp_path / "a", {"helpfulness": [1.0, 2.0, 3.0, 4.0]})
    b = write_run(tmp_path / "b", {"helpfulness": [2.0, 2.0, 5.0, 4.0]})
    _rewrite(b / "samples.jsonl", change)
    return a, b


def _score(value: Any) -> Any:
    return lambda index, row: row["judgments"]["helpfulness"].update(score=value) if index == 0 else None


@pytest.mark.parametrize(("change", "needles"), [
    (_score("7"), ["samples.jsonl:1:", "'helpfulness'", "score '7' is not a number"]),
    (_score(True), ["score True is not a number"]),
    (_score("seven"), ["score 'seven' is not a number"]),
    (_score(None), ["score None is not a number"]),
    (_score(float("nan")), ["the score is nan"]),
    (_score(float("-inf")), ["the score is -inf"]),
    (lambda index, row: row.update(doc_id=float(row["doc_id"])), ["samples.jsonl:1: doc_id 0.0 is not a whole number"]),
    (lambda index, row: row.update(doc_id=True) if index == 1 else None, ["samples.jsonl:2: doc_id True"]),
    (lambda index, row: row.update(judgments=[1]) if index == 0 else None, ["samples.jsonl:1: judgments is list [1]"]),
    (lambda index, row: row["judgments"].update(helpfulness="7") if index == 2 else None,
     ["samples.jsonl:3: the judgment of 'helpfulness' is '7'"]),
])
def test_samples_read_leniently_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      change: Any, needles: list[str]) -> None:
    a, b = _judged(tmp_path, change)
    code, _, err = _cli(["compare", str(a), str(b), "--n-resamples", "200", "-o", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, str(b), *needles)


def test_nan_and_infinity_literals_in_a_samples_file_are_refused(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _judged(tmp_path, lambda index, row: None)
    path = b / "samples.jsonl"
    # Written by hand, as JavaScript or pandas might: Python's json reads these literals as floats.
    path.write_text(path.read_text().replace('"score": 2.0', '"score": NaN', 1))
    code, _, err = _cli(["top-p", str(a), str(b), "-o", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, "the score is nan")


def test_a_run_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _judged(tmp_path, lambda index, row: None)
    for args in (["frontier", str(a), str(b), str(a / "samples.jsonl"), "--x", "helpfulness", "--y", "helpfulness"],
                 ["top-p", str(a), str(b), str(a)]):
        code, _, err = _cli([*args, "-o", str(tmp_path / "out")], capsys)
        _one_line_error(code, err, "given twice", str(a))


def test_frontier_points_of_one_alpha_get_distinct_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stronger = {**model_spec(alpha=0.5), "beta": 2.0}
    paths = [write_run(tmp_path / name, {"helpfulness": [1.0 + i, 2.0, 3.0], "harm": [1.0, 0.0, 2.0 - i]}, spec=spec)
             for i, (name, spec) in enumerate((("beta1", model_spec(alpha=0.5)), ("beta2", stronger),
                                               ("other", model_spec(alpha=0.3))))]
    code, out, _ = _cli(["frontier", *map(str, paths), "--x", "helpfulness", "--y", "harm", "--n-resamples", "200",
                         "-o", str(tmp_path / "out"), "--json"], capsys)
    assert code == 0
    assert [p["label"] for p in json.loads(out)["points"]] == ["alpha=0.5 (beta1)", "alpha=0.5 (beta2)", "alpha=0.3"]


def test_agreement_refuses_a_threshold_that_labels_nothing(tmp_path: Path) -> None:
    from eft_eval.analysis import agreement_analysis, load_run
    from eft_eval.errors import EFTEvalError

    a, b = _judged(tmp_path, lambda index, row: None)
    for threshold in (float("nan"), float("inf")):
        with pytest.raises(EFTEvalError, match=f"agreement: threshold={threshold} is not a finite number"):
            agreement_analysis(load_run(a), load_run(b), "helpfulness", threshold=threshold)
