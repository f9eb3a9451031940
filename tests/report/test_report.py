"""The HTML report without a browser: what goes into the file (the browser tests check the page)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_helpers import SCRIPT_RESPONSE, write_run, write_sweep

from eft_eval.cli import main
from eft_eval.report import ReportOptions, collect, render_report, script_json
from eft_eval.stats import short_label


def _data_block(html: str) -> str:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.DOTALL)
    assert found is not None
    return found.group(1)


def test_script_json_cannot_end_or_change_its_script_block() -> None:
    text = script_json({"a": SCRIPT_RESPONSE})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": SCRIPT_RESPONSE}


def test_report_is_self_contained_and_escapes_model_text(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", 0, 4, script_doc=1)
    html = render_report(collect([run]))
    block = _data_block(html)
    assert "<script>window.__pwned" not in html  # neither in the JSON nor rendered anywhere
    assert json.loads(block)["samples"][1]["a"] == SCRIPT_RESPONSE
    # Nothing is fetched: no src/href to another document, and a policy that forbids it.
    assert not re.search(r'\b(src|href)="(?!#)', html)
    assert "default-src 'none'" in html


def test_sweep_folder_runs_follow_the_grid_and_analysis_folder_is_read(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep")
    (sweep / "analysis").mkdir()
    (sweep / "frontier.json").rename(sweep / "analysis" / "frontier.json")  # where `eft-eval sweep` writes it
    points = [{"label": label} for label in ("alpha=1.0", "alpha=0.0", "alpha=0.5")]
    (sweep / "sweep.json").write_text(json.dumps({"study": "my_frontier", "about": "three alphas", "points": points}))
    inputs = collect([sweep])
    assert [run.label for run in inputs.runs] == ["alpha=1.0", "alpha=0.0", "alpha=0.5"]
    assert set(inputs.studies[0].analyses) == {"frontier", "scaling", "top_p"}
    html = render_report(inputs, ReportOptions(notes=["A note in plain words."]))
    assert "Study report: my_frontier" in html and "three alphas" in html and "A note in plain words." in html
    # Frontier points are tied to their runs by folder: alpha=0.5 is the third run now.
    assert ('id="frontier__run2"' in html
            and '<tr class="pick" data-run="2"><td><a href="#samples" class="run-link" data-run="2">alpha=0.5' in html)


def test_report_of_a_folder_with_nothing_to_report_is_one_line(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--html", str(tmp_path / "out.html")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "nothing to report" in error and str(tmp_path / "empty") in error
    assert not (tmp_path / "out.html").exists()


def test_demo_report_holds_the_run_and_its_frontier_and_says_what_they_are(tmp_path: Path) -> None:
    from eft_eval.app._demo import write_demo_report

    run = write_run(tmp_path / "demo", 9, 6)
    write_sweep(run / "frontier", n_docs=3)
    (run / "frontier" / "sweep.json").write_text(json.dumps({"study": "demo_frontier", "points": []}))
    html = write_demo_report(run, run / "frontier", run / "report.html").read_text()
    data = json.loads(_data_block(html))
    assert [r["label"] for r in data["runs"]] == ["demo", "alpha=0.0", "alpha=0.5", "alpha=1.0"]
    assert "smoke test" in html and "SmolLM2-135M-Instruct" in html and 'id="frontier-figure"' in html


def test_report_of_a_human_study_project_finds_its_gold_labels(tmp_path: Path) -> None:
    from report_helpers import write_human_study

    project, adjudication = write_human_study(tmp_path)
    assert main(["human-study", "report", str(project), "--adjudication", str(adjudication)]) == 0
    for given in (project, project / "report"):  # the project, or the folder `human-study report` wrote
        out = tmp_path / f"{given.name}.html"
        assert main(["report", str(given), "--html", str(out)]) == 0
        html = out.read_text()
        assert html.count('class="disagreement"') == 2 and html.count("gold: error") == 2
        assert "judge reasoning for doc 2 &lt;script&gt;" in html  # escaped, never markup


def test_the_frontier_is_titled_by_its_judges_and_box_plots_have_their_own_caption(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep")
    frontier = json.loads((sweep / "frontier.json").read_text())
    (sweep / "frontier.json").write_text(json.dumps({**frontier, "x_judge": "factuality", "y_judge": "harm"}))
    html = render_report(collect([sweep]))
    assert "<h3>factuality–harm frontier</h3>" in html and "Helpful-harmless" not in html
    # Three runs: histograms, captioned as shares; six runs: box plots, captioned as boxes.
    assert "share of each run's scored responses per score" in html and "one box per run" not in html
    runs = [write_run(tmp_path / f"run-{index}", index, 4) for index in range(6)]
    html = render_report(collect(runs))
    captions = re.findall(r'<figure class="plot" id="dist-(\w+)">.*?<figcaption>(.*?)</figcaption>', html, re.DOTALL)
    assert {judge for judge, _ in captions} == {"helpfulness", "harm"}
    for _, caption in captions:
        assert "one box per run" in caption and "median" in caption and "share of" not in caption


def test_long_run_labels_are_short_with_the_full_label_and_spec_as_their_tooltip(tmp_path: Path) -> None:
    long = "ft=meta-llama-Llama-2-7b-chat-hf_system=You-are-a-helpful-assistant-who-answers-everything"
    runs = [write_run(tmp_path / name, index, 3) for index, name in enumerate((long, "short"))]
    spec = json.loads((runs[0] / "samples.jsonl").read_text().splitlines()[0])["model"]
    html = render_report(collect(runs))
    short = short_label(long)
    assert len(short) <= 40 and short != long
    data = json.loads(_data_block(html))
    assert [run["label"] for run in data["runs"]] == [short, "short"]  # the sample browser and its run picker
    title = f'title="{long}\nmodel: {spec}"'
    assert f'data-run="0"{" " + title}>{short}</a>' in html  # the results table: short, the full one on hover
    assert f'<label {title}>' in html and f'<strong {title}>{short}</strong>' in html
    assert f"<code>{tmp_path / long}</code>" in html  # and in full in the run's configuration
    ticks = re.findall(r"<text[^>]*>([^<]*)</text>", html)  # the figures' tick labels
    assert short in ticks and long not in ticks
