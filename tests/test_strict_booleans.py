"""Booleans in specs and config files: true/false, yes/no, 1/0 in any case, or real bools; else an error.

`bool("false")` is True. Before strict parsing, `trust_remote_code=false` in a spec (and `"False"`
in YAML) turned remote code on. The spec cases are in test_spec.py; these are the other places a
file or a flag hands over a boolean as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.models import parse_spec
from eft_eval.parsing import parse_bool
from eft_eval.sweep._study import load_study


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False), ("YES", True),
     ("no", False), (" 1 ", True), ("0", False)],
)
def test_parse_bool_accepts_the_usual_spellings(value: Any, expected: bool) -> None:
    assert parse_bool(value, "flag", "somewhere") is expected


@pytest.mark.parametrize("value", ["maybe", "off", "", "tru", 2, -1, 1.0, None, [True]])
def test_parse_bool_names_the_key_and_value_of_anything_else(value: Any) -> None:
    with pytest.raises(EFTEvalError) as caught:
        parse_bool(value, "flag", "settings.yaml")
    assert str(caught.value).startswith(f"settings.yaml: flag={value!r} is not a boolean")


def write_study(folder: Path, judge: str, model_extra: str = "") -> Path:
    path = folder / "study.yaml"
    path.write_text(
        "study: s\nrun: {task: demo}\n"
        f"judge: {{{judge}}}\n"
        "grid: {alpha: [0, 1]}\n"
        "model: {base: B, ft: F, ft2: G, ref: R, alpha: '{alpha}'" + model_extra + "}\n"
        "analysis: {kind: frontier, x: helpfulness, y: harm}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(("text", "expected"), [("'false'", False), ("'No'", False), ("'TRUE'", True), ("1", True)])
def test_a_studys_show_query_is_parsed_strictly(tmp_path: Path, text: str, expected: bool) -> None:
    study = load_study(write_study(tmp_path, f"show_query: {text}"))
    assert [point.judge["show_query"] for point in study.points] == [expected, expected]


def test_a_studys_bad_boolean_is_one_line_naming_the_file_and_key(tmp_path: Path) -> None:
    path = write_study(tmp_path, "show_query: maybe")
    with pytest.raises(EFTEvalError, match=rf"{path}: judge.show_query='maybe' is not a boolean"):
        load_study(path)


def test_a_studys_model_keeps_trust_remote_code_off(tmp_path: Path) -> None:
    """A study's `model` mapping becomes a compact spec: YAML `false` arrives as the text "False"."""
    study = load_study(write_study(tmp_path, "backend: local", ", trust_remote_code: false"))
    for point in study.points:
        assert not any(component.trust_remote_code for _, component in parse_spec(point.model).components())
