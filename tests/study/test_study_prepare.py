"""`human-study prepare`: which items are drawn, what annotators see, and a config Potato accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from study_helpers import judged_sample, write_samples

from eft_eval.cli import main
from eft_eval.study._selection import SelectionConfig, read_judged_samples, select_items

MODELS = {"small-ft": 0.25, "eft-up": 0.5, "large-ft": 0.75}  # judged error rates below


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    records = []
    for model, rate in MODELS.items():
        errors = int(rate * 8)
        records += [judged_sample(d, model, score=2.0 if d < errors else 0.0) for d in range(8)]
        records.append(judged_sample(8, model, status="failed"))
    for record in records:
        record["judgments"]["factuality"]["reason"] = "SECRET-JUDGE-REASON"
    return write_samples(tmp_path / "samples.jsonl", records)


def _prepare(samples: Path, out: Path, *flags: str) -> dict:  # type: ignore[type-arg]
    assert main(["human-study", "prepare", "--samples", str(samples), "--out", str(out), *flags]) == 0
    return json.loads((out / "study.json").read_text())  # type: ignore[no-any-return]


def test_seeded_draw_excludes_unscored_items(samples: Path) -> None:
    loaded = read_judged_samples(samples, "factuality")
    def draw(seed: int) -> list[int]:
        return [s.source_line for s in select_items(loaded, SelectionConfig(n=10, seed=seed), samples).items]

    assert draw(3) == draw(3) and draw(3) != draw(4)
    chosen = select_items(loaded, SelectionConfig(n=24, seed=0), samples)
    assert all(s.judge_status == "scored" for s in chosen.items)  # the 3 failed ones can never be drawn
    assert chosen.excluded == {"judge failed": 3}
    with pytest.raises(Exception, match="only 24 responses"):
        select_items(loaded, SelectionConfig(n=25), samples)


@pytest.mark.parametrize("target, model", [(0.3, "small-ft"), (0.55, "eft-up"), (1.0, "large-ft")])
def test_model_nearest_the_target_error_rate(samples: Path, tmp_path: Path, target: float, model: str) -> None:
    manifest = _prepare(samples, tmp_path / "p", "--n", "4", "--target-error-rate", str(target))
    assert manifest["selection"]["model"] == model
    assert {i["source"]["model"] for i in manifest["items"]} == {model}
    assert manifest["selection"]["model_error_rates"] == MODELS


def test_project_shows_query_and_response_and_hides_the_judge(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    manifest = _prepare(samples, out, "--n", "6", "--model", "eft-up", "--annotators-per-item", "3", "--seed", "2",
                        "--error-threshold", "2")
    shown = [json.loads(line) for line in (out / "data/items.jsonl").read_text().splitlines()]
    assert [set(item) for item in shown] == [{"id", "query", "response"}] * 6
    assert [item["id"] for item in shown] == [f"item-{k:04d}" for k in range(1, 7)]
    for path in (out / "data/items.jsonl", out / "config.yaml", out / "instructions.md"):
        assert "SECRET-JUDGE-REASON" not in path.read_text() and "judge" not in path.read_text().lower()
    # The hidden key: judge labels and scores, reduced with the given threshold.
    assert all(item["judge_label"] == (item["judge_score"] >= 2) for item in manifest["items"])
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["num_annotators_per_item"] == 3 and config["max_annotations_per_user"] == 6
    assert [s["name"] for s in config["annotation_schemes"]] == ["num_errors", "any_error"]
    assert "factual errors" in config["annotation_instructions"]
    # Potato's own validator accepts the written project.
    check = subprocess.run([sys.executable, "-m", "potato", "validate", str(out / "config.yaml")], capture_output=True,
                           text=True, timeout=300, check=False)
    assert check.returncode == 0 and "no issues found" in check.stdout, check.stdout + check.stderr


def test_user_template_folder(samples: Path, tmp_path: Path) -> None:
    from eft_eval.plugins import builtin_dir

    custom = tmp_path / "templates" / "strict"
    custom.mkdir(parents=True)
    for name in ("potato.yaml", "instructions.md"):
        (custom / name).write_text((builtin_dir("human_study") / "factuality" / name).read_text())
    study_yaml = (builtin_dir("human_study") / "factuality" / "study.yaml").read_text()
    (custom / "study.yaml").write_text(study_yaml.replace('"3 or more": 3', '"3 or more": 4'))
    manifest = _prepare(samples, tmp_path / "p", "--n", "2", "--template", "strict", "--include-path",
                        str(tmp_path / "templates"))
    assert manifest["template"] == "strict" and manifest["questions"]["count_labels"]["3 or more"] == 4
    # A study.yaml that disagrees with the Potato questions is refused up front.
    (custom / "study.yaml").write_text((custom / "study.yaml").read_text().replace('"2": 2', '"two": 2'))
    assert main(["human-study", "prepare", "--samples", str(samples), "--out", str(tmp_path / "q"), "--n", "2",
                 "--template", "strict", "--include-path", str(tmp_path / "templates")]) == 2
    assert not (tmp_path / "q").exists()
