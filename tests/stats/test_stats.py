"""eft_eval.stats: the aggregation registry and the judge YAML field that selects from it,
the one estimate type, and per-judge summaries grouped by model and by category."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from eft_eval.errors import EFTEvalError
from eft_eval.judging import load_judge_file, load_judges
from eft_eval.stats import (
    BootstrapSettings,
    Estimate,
    get_aggregation,
    register_aggregation,
    summarize_judgments,
    summarize_samples,
)


def test_registered_aggregations_on_hand_data() -> None:
    scores = [0.0, 1.0, 3.0, 1.0, 5.0]
    assert get_aggregation("mean")(scores) == pytest.approx(2.0)
    assert get_aggregation("median")(scores) == 1.0
    assert get_aggregation("majority")(scores) == 1.0
    assert get_aggregation("proportion_at_least", {"threshold": 1})(scores) == pytest.approx(4 / 5)
    assert get_aggregation("proportion_at_least", {"threshold": 3})(scores) == pytest.approx(2 / 5)
    # No majority, no scores: undefined, never 0.
    assert math.isnan(get_aggregation("majority")([0.0, 1.0, 1.0, 0.0]))
    assert math.isnan(get_aggregation("mean")([]))


def test_bad_aggregations_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="unknown aggregation 'mode'.*mean"):
        get_aggregation("mode")
    with pytest.raises(ValueError, match="takes parameters \\(threshold\\)"):
        get_aggregation("proportion_at_least")
    with pytest.raises(ValueError, match="threshold must be a number"):
        get_aggregation("proportion_at_least", {"threshold": "high"})


def test_a_registered_aggregation_is_found_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from eft_eval.stats import _aggregation

    monkeypatch.setattr(_aggregation, "_REGISTRY", dict(_aggregation._REGISTRY))  # leave no test entry behind

    @register_aggregation("test_max")
    def _max(scores: list[float]) -> float:
        return max(scores)

    assert get_aggregation("test_max")([1.0, 7.0, 2.0]) == 7.0


def _judge_file(tmp_path: Path, aggregation: str) -> Path:
    text = (Path(__file__).parents[2] / "judges" / "factuality.yaml").read_text()
    assert "aggregation: mean" in text
    path = tmp_path / "factuality_any.yaml"
    path.write_text(text.replace("name: factuality", "name: factuality_any").replace("aggregation: mean", aggregation))
    return path


def test_judge_yaml_aggregation_selects_the_summary_function(tmp_path: Path) -> None:
    spec = load_judge_file(_judge_file(tmp_path, "aggregation: {name: proportion_at_least, threshold: 1}"))
    assert (spec.aggregation, dict(spec.aggregation_params)) == ("proportion_at_least", {"threshold": 1})
    judgments = [{"status": "scored", "score": s} for s in (0, 2, 1, 0)] + [{"status": "failed", "score": None}]
    summary = summarize_judgments(judgments, spec)
    assert summary["aggregate"] == pytest.approx(2 / 4)  # share of responses with any error; the failure left out
    assert summary["mean"] == pytest.approx(3 / 4) and summary["n_failed"] == 1
    assert summary["aggregation"] == "proportion_at_least" and summary["aggregation_params"] == {"threshold": 1}
    median = load_judge_file(_judge_file(tmp_path, "aggregation: median"))
    assert summarize_judgments(judgments, median)["aggregate"] == 0.5
    # The built-in judges keep their cache fingerprints: the default aggregation adds nothing to them.
    factuality = load_judges(["factuality"])[0]
    assert factuality.aggregation_params == {} and summarize_judgments(judgments, factuality)["aggregate"] == 0.75


@pytest.mark.parametrize(("value", "message"), [
    ("aggregation: mode", "field 'aggregation' unknown aggregation 'mode'"),
    ("aggregation: {name: proportion_at_least}", "field 'aggregation' aggregation 'proportion_at_least' takes"),
    ("aggregation: [mean]", "field 'aggregation' must name one of"),
])
def test_bad_aggregation_in_a_judge_file_names_file_and_field(tmp_path: Path, value: str, message: str) -> None:
    path = _judge_file(tmp_path, value)
    with pytest.raises(EFTEvalError) as error:
        load_judge_file(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_estimate_prints_and_serializes_one_way() -> None:
    estimate = Estimate(0.7, 0.145, 0.4, 0.9, 10, method="paired-bootstrap-percentile")
    assert str(estimate) == estimate.format() == "0.700 ± 0.145 (95% CI 0.400-0.900, n=10)"
    undefined = Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    assert undefined.format() == "n/a ± n/a (95% CI n/a-n/a, n=0)"
    assert undefined.to_dict()["value"] is None and estimate.to_dict()["method"] == "paired-bootstrap-percentile"
    assert BootstrapSettings().kwargs() == {"n_resamples": 9999, "seed": 0, "confidence_level": 0.95}


def test_summaries_group_by_model_and_by_category_in_one_function() -> None:
    helpfulness = load_judges(["helpfulness"])

    def row(model: str, category: str | None, score: float | None) -> dict:
        judgment = {"status": "scored", "score": score} if score is not None else {"status": "abstained", "score": None}
        return {"model": model, "judgments": {"helpfulness": judgment},
                "doc": {"category": category} if category else {}}

    rows = [row("a", "factual", 10), row("a", "harmful", 30), row("b", "factual", 50), row("b", "harmful", None)]
    summary = summarize_samples(rows, helpfulness)
    assert summary["judges"]["helpfulness"]["mean"] == pytest.approx(30)
    assert summary["by_model"]["a"]["helpfulness"]["mean"] == pytest.approx(20)
    assert summary["by_model"]["b"]["helpfulness"]["n_abstained"] == 1
    assert summary["by_category"]["factual"]["helpfulness"]["mean"] == pytest.approx(30)
    assert summary["by_category"]["harmful"]["helpfulness"]["n_scored"] == 1
    one_model = summarize_samples(rows[:2], helpfulness)
    assert "by_model" not in one_model and set(one_model["by_category"]) == {"factual", "harmful"}
    no_category = summarize_samples([{**r, "doc": {}} for r in rows[:2]], helpfulness)
    assert "by_category" not in no_category
