"""Study files hardened: `--set` values are the text typed (not YAML), grids are counted before
they are expanded (a tiny step is refused in one line, `list studies` never expands), ranges must
be finite and go towards `to`, and a key written twice in a study file is an error."""

from __future__ import annotations

import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.models import parse_spec
from eft_eval.sweep import load_study

PROMPT = "You are helpful."


def write_study(folder: Path, grid: Any = None, variables: Any = None, text: str | None = None) -> Path:
    """A study over placeholder model names: loading it parses specs but never touches a model."""
    path = folder / "study.yaml"
    if text is None:
        text = yaml.safe_dump({
            "study": "hardened",
            "run": {"task": "demo", "limit": "{limit}"},
            "variables": variables if variables is not None else {"prompt": PROMPT, "weight": 0.5, "limit": 4},
            "grid": grid if grid is not None else {"beta": [1, 2]},
            "model": {"base": "B", "ft": "F", "ft_system_prompt": "{prompt}", "ft2": "G", "ref": "R",
                      "alpha": "{weight}", "beta": "{beta}"},
            "analysis": {"kind": "frontier", "x": "helpfulness", "y": "harm"},
        }, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def listed_specs(path: Path, *args: str) -> list[Any]:
    """The specs `sweep --list` prints, parsed back."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["sweep", str(path), "--list", *args]) == 0
    specs = []
    for line in out.getvalue().splitlines():
        words = shlex.split(line)
        specs.append(parse_spec(words[words.index("--model") + 1]))
    return specs


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("eft-eval: error: "), err
    return err


# --- `--set` values --------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["Answer. Note: be brief", "no", "123", "# comment", "[INST] be brief",
                                   "yes: really", "1e5", "~", "Null"])
def test_a_set_text_value_is_the_text_typed(tmp_path: Path, typed: str) -> None:
    specs = listed_specs(write_study(tmp_path), "--set", f"prompt={typed}")
    assert {spec.deltas[0].ft.system_prompt for spec in specs} == {typed}


def test_set_null_unsets_a_variable(tmp_path: Path) -> None:
    specs = listed_specs(write_study(tmp_path), "--set", "prompt=null")
    assert {spec.deltas[0].ft.system_prompt for spec in specs} == {None}


@pytest.mark.parametrize(("typed", "expected"), [("0.25", 0.25), ("1e-1", 0.1), ("1", 1.0), (" 0.75 ", 0.75)])
def test_a_set_value_is_a_number_where_the_studys_default_is_one(tmp_path: Path, typed: str, expected: float) -> None:
    specs = listed_specs(write_study(tmp_path), "--set", f"weight={typed}")
    assert {spec.deltas[0].weight for spec in specs} == {expected}


def test_a_whole_number_stays_whole_for_a_run_setting(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path), set_variables={"limit": "7"})
    assert {point.run["limit"] for point in study.points} == {7}
    assert all(isinstance(point.run["limit"], int) for point in study.points)


@pytest.mark.parametrize("typed", ["abc", "nan", "inf", "-inf", "[0.1, 0.2]", "true", ""])
def test_a_set_value_that_is_not_a_number_where_one_is_expected_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], typed: str,
) -> None:
    path = write_study(tmp_path)
    err = one_line_error(capsys, ["sweep", str(path), "--list", "--set", f"weight={typed}"])
    assert str(path) in err and f"weight={typed!r}" in err and "the study's default is 0.5, a number" in err, err


@pytest.mark.parametrize(("typed", "kind"), [("[a, b]", "list"), ("{role: x}", "mapping"), ("[]", "list")])
def test_a_set_value_that_would_be_a_list_or_mapping_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], typed: str, kind: str,
) -> None:
    path = write_study(tmp_path)
    err = one_line_error(capsys, ["sweep", str(path), "--list", "--set", f"prompt={typed}"])
    assert f"{path}: --set prompt={typed!r} would be a {kind}" in err, err


def test_a_boolean_variable_is_parsed_strictly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, variables={"prompt": PROMPT, "weight": 0.5, "limit": 4, "flag": False})
    assert load_study(path, set_variables={"flag": "yes"}).variables["flag"] is True
    with pytest.raises(EFTEvalError, match=r"flag='maybe' is not a boolean"):
        load_study(path, set_variables={"flag": "maybe"})


def test_a_variable_set_twice_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(capsys, ["sweep", str(write_study(tmp_path)), "--list", "--set", "weight=0.1",
                                  "--set", "weight=0.2"])
    assert "--set weight is given twice ('0.1' and '0.2'): give it once" in err


def test_a_library_caller_cannot_set_a_structure(tmp_path: Path) -> None:
    with pytest.raises(EFTEvalError, match=r"a variable holds one value, not a dict"):
        load_study(write_study(tmp_path), set_variables={"prompt": {"Answer. Note": "be brief"}})


# --- keys written twice -------------------------------------------------------------------------


@pytest.mark.parametrize("duplicate", [
    "grid:\n  beta: [1, 2]\n  beta: [3]\n",
    "variables: {prompt: a, weight: 0.5, limit: 4, weight: 0.9}\ngrid: {beta: [1]}\n",
])
def test_a_key_given_twice_in_a_study_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], duplicate: str,
) -> None:
    base = ("study: twice\nrun: {task: demo}\n" + duplicate +
            "model: {base: B, ft: F, ft2: G, ref: R, alpha: 0.5, beta: '{beta}'}\n"
            "analysis: {kind: frontier, x: helpfulness, y: harm}\n")
    if "variables" not in duplicate:
        base = base.replace("run: {task: demo}\n", "run: {task: demo}\nvariables: {}\n")
    path = write_study(tmp_path, text=base)
    err = one_line_error(capsys, ["sweep", str(path), "--list"])
    assert f"{path}: cannot read the study: line" in err and "is given twice in one mapping" in err, err


# --- grids counted before they are expanded -----------------------------------------------------


def huge_study(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_study(folder, grid={"alpha": {"from": 0, "to": 1, "step": "1e-9"}},
                       variables={"prompt": PROMPT, "weight": 0.5, "limit": 4})


def _small_memory() -> None:
    # Before grids were counted, expanding a billion points took gigabytes: fail fast instead of
    # swapping the shared test machine.
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eft_eval.cli", *args], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_small_memory, check=False)


def test_a_huge_grid_is_refused_in_one_line_before_it_is_expanded(tmp_path: Path) -> None:
    path = huge_study(tmp_path)
    start = time.monotonic()
    done = run_cli("sweep", str(path), "--list")
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr == (f"eft-eval: error: {path}: grid.alpha has 1,000,000,001 values, so the grid has "
                           "1,000,000,001 points, over the limit of 100,000: use a coarser step or fewer values "
                           "(or raise the limit with --max-points)\n")
    assert time.monotonic() - start < 60


def test_list_studies_counts_a_huge_grid_without_expanding_it(tmp_path: Path) -> None:
    huge_study(tmp_path / "studies")
    done = run_cli("list", "studies", "--include-path", str(tmp_path / "studies"))
    assert done.returncode == 0, done.stderr
    assert ("hardened" in done.stdout
            and "[1,000,000,001 runs, over the sweep limit of 100,000, frontier]" in done.stdout)


def test_the_product_of_axes_counts_and_max_points_overrides(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    grid = {"alpha": {"from": 0, "to": 0.9, "step": 0.1}, "beta": list(range(1, 21))}  # 10 * 20 = 200
    path = write_study(tmp_path, grid=grid, variables={"prompt": PROMPT, "weight": 0.5, "limit": 4})
    err = one_line_error(capsys, ["sweep", str(path), "--list", "--max-points", "199"])
    assert "grid.beta has 20 values, so the grid has 200 points, over the limit of 199" in err
    assert len(listed_specs(path, "--max-points", "200")) == 200
    with pytest.raises(SystemExit):
        main(["sweep", str(path), "--list", "--max-points", "0"])
    assert "argument --max-points: '0' is out of range" in capsys.readouterr().err


@pytest.mark.parametrize(("grid_range", "expected"), [
    ({"from": 0, "to": 1, "step": 0}, "grid.alpha range step 0 must be positive"),
    ({"from": 0, "to": 1, "step": -0.1}, "grid.alpha range step -0.1 must be positive"),
    ({"from": 1, "to": 0, "step": 0.1}, "grid.alpha range goes from 1 away from to 0 with step 0.1"),
    ({"from": 0, "to": 1, "step": float("nan")}, "grid.alpha.step is nan: the range needs finite numbers"),
    ({"from": 0, "to": float("inf"), "step": 0.1}, "grid.alpha.to is inf: the range needs finite numbers"),
    ({"from": float("-inf"), "to": 0, "step": 1}, "grid.alpha.from is -inf"),
    ({"from": "zero", "to": 1, "step": 0.5}, "grid.alpha.from is 'zero'"),
    ({"from": True, "to": 1, "step": 0.5}, "grid.alpha.from is True"),
    ({"from": -1e308, "to": 1e308, "step": 1}, "has too many values to count"),
    ({"from": 0, "to": 1e-9, "step": 1e-12}, "is finer than grid values are kept (10 decimal places)"),
])
def test_a_bad_range_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], grid_range: dict[str, Any],
                                 expected: str) -> None:
    path = write_study(tmp_path, grid={"alpha": grid_range}, variables={"prompt": PROMPT, "weight": 0.5, "limit": 4})
    err = one_line_error(capsys, ["sweep", str(path), "--list"])
    assert f"{path}: " in err and expected in err, err


def test_a_range_written_with_an_exponent_is_a_number(tmp_path: Path) -> None:
    """YAML 1.1 reads `5e-1` (no dot) as text; a range takes it as the number it looks like."""
    path = write_study(tmp_path, grid={"beta": {"from": 1, "to": 2, "step": "5e-1"}},
                       variables={"prompt": PROMPT, "weight": 0.5, "limit": 4})
    assert load_study(path).grid["beta"] == ["1", "1.5", "2"]


def test_close_grid_values_keep_distinct_labels_and_exact_weights(tmp_path: Path) -> None:
    """`:g` labels kept six digits: 1.000001 was labelled `1`, so range points collapsed silently
    and the spec's weight was rounded."""
    path = write_study(tmp_path, grid={"beta": {"from": 1, "to": 1.000005, "step": 0.000001}},
                       variables={"prompt": PROMPT, "weight": 0.5, "limit": 4})
    study = load_study(path)
    assert len(study.points) == 6
    assert [parse_spec(point.model).beta for point in study.points] == [1, 1.000001, 1.000002, 1.000003,
                                                                         1.000004, 1.000005]
    listed = write_study(tmp_path, grid={"beta": [1.2345671, 1.2345672]},
                         variables={"prompt": PROMPT, "weight": 0.5, "limit": 4})
    assert load_study(listed).grid["beta"] == ["1.2345671", "1.2345672"]


def test_the_builtin_studies_keep_their_labels(tmp_path: Path) -> None:
    from eft_eval.sweep import discover_studies

    frontier = load_study(discover_studies()["frontier"])
    assert frontier.grid["alpha"] == [f"{a / 10:g}" for a in range(11)]
    assert frontier.points[-1].label == "base=70B_alpha=1"
