"""`eft-eval sweep`: study files, a tiny alpha sweep end to end (batched generation, one load per
model, a loopback judge), resume after a kill, `--list` commands, shards and `--analyze-only`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipeline_helpers import HH_FILE, judge_answer

from eft_eval.cli import main
from eft_eval.sweep import load_study
from eft_eval.testing import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
LIMIT, JUDGES, ALPHAS = 3, ["helpfulness", "harm"], [0, 0.5, 1]


def write_study(folder: Path, family: dict[str, Path], **changes: Any) -> Path:
    """A 3-point alpha sweep over tiny models: two deltas (small_ft, large_ft) sharing one reference."""
    study = {
        "study": "tiny_alpha",
        "about": "three alphas over tiny models",
        "run": {"task": "hh_harmless", "judges": JUDGES, "limit": LIMIT, "max_new_tokens": 5, "batch_size": 2,
                "data_files": [str(HH_FILE)], "gen_kwargs": "do_sample=true,temperature=1.0"},
        "variables": {"reference": str(family["small_base"])},
        "grid": {"alpha": ALPHAS},
        "model": {"base": str(family["large_base"]), "ft": str(family["small_ft"]), "ft2": str(family["large_ft"]),
                  "ref": "{reference}", "alpha": "{alpha}"},
        "analysis": {"kind": "frontier", "x": "helpfulness", "y": "harm"},
    }
    study.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny_alpha.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def jsonl(path: Path) -> list[dict[str, Any]]:
    # Not str.splitlines: tiny random models generate U+2028 and other separators JSON leaves raw.
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


def responses(run: Path) -> list[str]:
    return [row["response"] for row in jsonl(run / "samples.jsonl")]


def scores_only(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "judgments": {k: v["score"] for k, v in r["judgments"].items()}} for r in rows]


def run_identity(run: Path) -> Any:
    return json.loads((run / "run.json").read_text())["identity"]


def generation_lines(run: Path) -> list[dict[str, Any]]:
    return jsonl(run / "generations.jsonl")


@pytest.fixture()
def count_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every model load, by folder (ModelCache.get calls `load_model` once per distinct weights)."""
    from eft_eval.models import _components

    loads: list[str] = []
    real = _components.load_model

    def counting(spec: Any) -> Any:
        loads.append(spec.model)
        return real(spec)

    monkeypatch.setattr(_components, "load_model", counting)
    return loads


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(judge_answer) as loopback:
        yield loopback


@pytest.fixture(scope="module")
def swept(tiny_family: dict[str, Path], server: LoopbackServer,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny study found by name on an include path and swept once, with model loads counted."""
    from eft_eval.models import _components

    root = tmp_path_factory.mktemp("sweep")
    write_study(root / "studies", tiny_family)
    loads: list[str] = []
    real = _components.load_model
    _components.load_model = lambda spec: (loads.append(spec.model), real(spec))[1]  # type: ignore[assignment]
    stderr, stdout = io.StringIO(), io.StringIO()
    before = server.request_count
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            code = main(["sweep", "tiny_alpha", "--include-path", str(root / "studies"), "--output", str(root / "out"),
                         "--base-url", server.base_url, "--no-progress"])
    finally:
        _components.load_model = real  # type: ignore[assignment]
    return {"code": code, "root": root, "out": root / "out", "stderr": stderr.getvalue(), "loads": loads,
            "requests": server.request_count - before, "stdout": stdout.getvalue()}


def test_sweep_writes_every_artefact_with_each_model_loaded_once(swept: dict[str, Any]) -> None:
    assert swept["code"] == 0, swept["stderr"][-3000:]
    out: Path = swept["out"]
    record = json.loads((out / "sweep.json").read_text())
    labels = [point["label"] for point in record["points"]]
    assert labels == ["alpha=0", "alpha=0.5", "alpha=1"] and record["study"] == "tiny_alpha"
    for point in record["points"]:
        run = out / "runs" / point["label"]
        for name in ("run.json", "generations.jsonl", "samples.jsonl", "results.json"):
            assert (run / name).is_file(), f"{run}/{name}"
        run_json = json.loads((run / "run.json").read_text())
        assert run_json["model_spec"]["deltas"][0]["weight"] == point["values"]["alpha"]
        results = json.loads((run / "results.json").read_text())
        assert [results["judges"][j]["n_scored"] for j in JUDGES] == [LIMIT, LIMIT]
    # Four distinct models (large_base, small_ft, large_ft, small_base), each loaded once for all points.
    assert sorted(Path(m).name for m in swept["loads"]) == ["large_base", "large_ft", "small_base", "small_ft"]
    assert swept["requests"] == 3 * LIMIT * len(JUDGES)
    # The alphas compose differently, so their samples are not all the same.
    assert len({tuple(responses(out / "runs" / label)) for label in labels}) > 1
    frontier = json.loads((out / "analysis" / "frontier.json").read_text())
    assert sorted(p["label"] for p in frontier["points"]) == labels
    assert sorted(p["alpha"] for p in frontier["points"]) == ALPHAS
    for line in ("run 1/3 alpha=0", "run 3/3 alpha=1", "3/3 runs finished", "one batched pass (3 grid points)"):
        assert line in swept["stderr"]


def test_a_sweep_ends_with_its_results_table_in_the_terminal(swept: dict[str, Any]) -> None:
    out: Path = swept["out"]
    lines = swept["stdout"].rstrip().splitlines()
    labels = sorted(path.name for path in (out / "runs").iterdir())
    table = [line.split() for line in lines if line.split()[:2] in ([label, "hh_harmless"] for label in labels)]
    # each run's mean per judge, as `eft-eval run` prints it...
    assert sorted((row[0], row[2]) for row in table) == sorted((label, judge) for label in labels for judge in JUDGES)
    for label in labels:
        results = json.loads((out / "runs" / label / "results.json").read_text())
        assert any(row[0] == label and row[2] == "harm" and float(row[3]) == pytest.approx(
            results["judges"]["harm"]["mean"], rel=1e-2) for row in table)
    # ...then the study's analysis table, last: not only the path of the report
    from eft_eval.analysis._render import frontier_table

    analysis = json.loads((out / "analysis" / "frontier.json").read_text())
    assert swept["stdout"].rstrip().endswith("frontier analysis:\n" + frontier_table(analysis).rstrip())


def test_batched_samples_equal_each_point_run_alone(tiny_family: dict[str, Path], swept: dict[str, Any],
                                                    server: LoopbackServer, tmp_path: Path) -> None:
    """`--list` gives one `eft-eval run` per point; run one by one they write the same folders."""
    out: Path = swept["out"]
    studies = str(swept["root"] / "studies")
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        assert main(["sweep", "tiny_alpha", "--include-path", studies, "--output", str(tmp_path / "alone"),
                     "--base-url", server.base_url, "--list"]) == 0
    commands = listing.getvalue().splitlines()
    assert len(commands) == 3 and all(c.startswith("eft-eval run hh_harmless --model ") for c in commands)
    for command in commands:
        args = shlex.split(command)
        assert main([*args[1:], "--no-progress"]) == 0
    for label in ("alpha=0", "alpha=0.5", "alpha=1"):
        alone, batched = tmp_path / "alone" / "runs" / label, out / "runs" / label
        assert responses(alone) == responses(batched)
        for name in ("samples.jsonl",):
            rows_alone, rows_batched = jsonl(alone / name), jsonl(batched / name)
            assert scores_only(rows_alone) == scores_only(rows_batched)
            # The batched pass records each response's length and ending as the point's own run does.
            lengths = [(r["response_tokens"], r["finish_reason"]) for r in rows_batched]
            assert lengths == [(r["response_tokens"], r["finish_reason"]) for r in rows_alone] and lengths
        assert run_identity(alone) == run_identity(batched)


def test_a_re_run_sweep_asks_nothing_again(swept: dict[str, Any], server: LoopbackServer,
                                           count_loads: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    out: Path = swept["out"]
    before = {p.name: (p / "generations.jsonl").read_text() for p in (out / "runs").iterdir()}
    requests = server.request_count
    assert main(["sweep", "tiny_alpha", "--include-path", str(swept["root"] / "studies"), "--output", str(out),
                 "--base-url", server.base_url, "--no-progress"]) == 0
    assert ("sweep: 3 run(s) already generated (alpha=0, alpha=0.5, alpha=1): their stored generations are read "
            "back, nothing is generated again") in capsys.readouterr().err
    assert server.request_count == requests  # every judgment replayed from the runs' caches
    assert count_loads == []  # every generation stored: no model loaded at all
    assert {p.name: (p / "generations.jsonl").read_text() for p in (out / "runs").iterdir()} == before


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_redoing_finished_work(
    tiny_family: dict[str, Path], swept: dict[str, Any], server: LoopbackServer, tmp_path: Path
) -> None:
    """SIGKILL while generating, then the same command: the rest is generated once, and the samples
    are those of the uninterrupted sweep (which decoded 2 prompts a block, this one 1: samples do
    not depend on batching)."""
    run = {"task": "hh_harmless", "judges": JUDGES, "limit": LIMIT, "max_new_tokens": 5, "batch_size": 1,
           "data_files": [str(HH_FILE)], "gen_kwargs": "do_sample=true,temperature=1.0"}
    studies = write_study(tmp_path / "studies", tiny_family, run=run).parent
    out = tmp_path / "out"
    args = ["sweep", "tiny_alpha", "--include-path", str(studies), "--output", str(out), "--base-url", server.base_url,
            "--no-progress"]
    first_store = out / "runs" / "alpha=0" / "generations.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "eft_eval.cli", *args], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (first_store.is_file() and first_store.read_text().count("\n") >= 1):
            assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before it was killed"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    stored = {label: len(generation_lines(out / "runs" / label)) for label in ("alpha=0", "alpha=0.5", "alpha=1")}
    assert 1 <= stored["alpha=0"] < LIMIT and not (out / "runs" / "alpha=0" / "results.json").exists()
    requests = server.request_count
    assert main(args) == 0
    for label in stored:
        lines = generation_lines(out / "runs" / label)
        assert len(lines) == LIMIT and len({line["key"] for line in lines}) == LIMIT  # nothing generated twice
        assert responses(out / "runs" / label) == responses(swept["out"] / "runs" / label)
    assert server.request_count - requests == 3 * LIMIT * len(JUDGES)


def test_shards_and_analyze_only(tiny_family: dict[str, Path], server: LoopbackServer, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study(tmp_path / "studies", tiny_family, grid={"alpha": ALPHAS}, run={
        "task": "hh_harmless", "judges": JUDGES, "limit": 1, "max_new_tokens": 3, "data_files": [str(HH_FILE)]})
    args = ["sweep", str(study), "--output", str(tmp_path / "out"), "--base-url", server.base_url, "--no-progress"]
    assert main([*args, "--shard", "2/3"]) == 0
    assert [p.name for p in (tmp_path / "out" / "runs").iterdir()] == ["alpha=0.5"]
    capsys.readouterr()
    assert main([*args, "--analyze-only"]) == 0
    err = capsys.readouterr().err
    assert "1/3 runs finished; missing: alpha=0, alpha=1" in err
    frontier = json.loads((tmp_path / "out" / "analysis" / "frontier.json").read_text())
    assert frontier["points"][0]["label"] == "alpha=0.5"
    assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == ["alpha=0.5"]  # nothing run
    assert main([*args, "--shard", "4/3"]) == 2
    assert "--shard" in capsys.readouterr().err


def test_builtin_studies_expand_to_the_papers_grids(capsys: pytest.CaptureFixture[str]) -> None:
    from eft_eval.models import parse_spec
    from eft_eval.sweep import discover_studies

    studies = {name: load_study(path) for name, path in discover_studies().items()}
    assert set(studies) >= {"frontier", "scaling", "top_p", "demo_frontier"}
    frontier = studies["frontier"]
    assert len(frontier.points) == 22 and frontier.grid["alpha"] == [f"{a / 10:g}" for a in range(11)]
    spec = parse_spec(frontier.points[-1].model)  # base=70B, alpha=1
    assert spec.base.model == "meta-llama/Llama-2-70b-hf" and [d.weight for d in spec.deltas] == [1.0, 0.0]
    assert spec.deltas[0].ref == spec.deltas[1].ref  # one shared reference
    scaling = studies["scaling"]
    assert [p.label for p in scaling.points][:2] == ["task=hh_config=small-ft", "task=hh_config=large-ft"]
    assert {p.run["task"] for p in scaling.points} == {"hh", "eli5"}
    up = parse_spec(next(p.model for p in scaling.points if p.names["config"] == "up"))
    assert up.base.model == "meta-llama/Llama-2-70b-hf" and up.deltas[0].ft.model == "meta-llama/Llama-2-7b-chat-hf"
    assert [parse_spec(p.model).top_p_weights for p in studies["top_p"].points] == [None, 0.95, 0.9, 0.8]
    demo = studies["demo_frontier"]
    demo_spec = parse_spec(demo.points[0].model)
    assert Path(demo_spec.base.model, demo_spec.base.gguf_file or "").is_file()
    assert demo_spec.deltas[0].ft.system_prompt != demo_spec.deltas[1].ft.system_prompt
    assert demo_spec.base == demo_spec.deltas[0].ref and demo_spec.base.format == "plain"
    assert demo.points[0].judge == {"backend": "local"}
    # `--set` replaces a variable everywhere it is used.
    other = load_study(studies["scaling"].path, set_variables={"family": "qwen2.5"})
    assert parse_spec(other.points[0].model).base.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert main(["list", "studies"]) == 0
    listed = capsys.readouterr().out
    for name in ("frontier", "scaling", "top_p", "demo_frontier"):
        assert f"  {name} " in listed


@pytest.mark.parametrize(("change", "expected"), [
    ({"gird": {}}, "'gird' is not a study key"),
    ({"run": {"task": "hh", "limt": 3}}, "run.limt is not a run setting"),
    ({"run": {"limit": 3}}, "run.task is missing"),
    ({"model": {"base": "{bsae}"}}, "model.base: unknown placeholder {bsae}"),
    ({"grid": {"alpha": 0.5}}, "grid.alpha must be a list"),
    ({"grid": {"alpha": {"from": 0, "to": 1}}}, "grid.alpha range needs from, to and step"),
    ({"analysis": {"kind": "fronteir"}}, "analysis.kind 'fronteir' is not one of"),
    ({"analysis": {"kind": "scaling", "role": "size"}}, "analysis.role must name the grid variable"),
    ({"model": {"base": "m", "ft": "f", "alpha": "{alpha}"}}, "model of grid point alpha=0"),
    ({"label": "same"}, "label gives 'same' to two grid points"),
    ({"judge": {"modle": "x"}}, "judge.modle is not a judge setting"),
])
def test_a_bad_study_file_is_one_line_naming_the_file_and_key(
    tiny_family: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any],
    expected: str,
) -> None:
    path = write_study(tmp_path, tiny_family, **change)
    assert main(["sweep", str(path), "--list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"eft-eval: error: {path}: ") and expected in err, err


def test_unknown_study_and_variable_are_one_line_errors(tiny_family: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "frontiers", "--list"]) == 2
    assert "unknown study 'frontiers'; available studies: demo_frontier, frontier" in capsys.readouterr().err
    path = write_study(tmp_path, tiny_family)
    assert main(["sweep", str(path), "--list", "--set", "refrence=x"]) == 2
    assert "variables.refrence is not a variable of this study" in capsys.readouterr().err


def test_per_row_weights_compose_exactly_as_scalar_weights() -> None:
    import torch

    from eft_eval.models import compose_logprobs

    generator = torch.Generator().manual_seed(0)
    base, ft1, ft2, ref = (torch.log_softmax(torch.randn(4, 50, generator=generator), -1) for _ in range(4))
    alphas = [0.0, 0.1, 0.7, 1.0]
    rows = compose_logprobs(base, [(ft1, ref), (ft2, ref)],
                            torch.tensor([[a, 1 - a] for a in alphas], dtype=torch.float64),
                            beta=1.5,
                            top_p_weights=0.9)
    for row, alpha in enumerate(alphas):
        alone = compose_logprobs(base[row], [(ft1[row], ref[row]), (ft2[row], ref[row])], [alpha, 1 - alpha],
                                 beta=1.5, top_p_weights=0.9)
        assert torch.equal(rows[row], alone)
    with pytest.raises(ValueError, match="per-row weights of shape"):
        compose_logprobs(base, [(ft1, ref)], torch.ones(4, 2))


def test_generate_ids_with_row_weights_equals_each_alpha_alone(tiny_family: dict[str, Path]) -> None:
    """Rows of several alphas over the same prompts in one batch give each alpha's own samples."""
    from eft_eval.models import EFTModel, ModelCache, SamplingConfig, prompt_key

    cache = ModelCache()
    spec = (f"base={tiny_family['large_base']},ft={tiny_family['small_ft']},ft2={tiny_family['large_ft']},"
            f"ref={tiny_family['small_base']}")
    prompts = ["Why is the sky blue?", "Hi", "Tell me a long story about the sea."]
    config = SamplingConfig(max_new_tokens=8, do_sample=True, temperature=1.0, seed=3)
    keys = [prompt_key(p) for p in prompts]
    model = EFTModel.from_spec(f"{spec},alpha=0", model_cache=cache)
    ids = model.encode(prompts)
    alphas = [0.0, 0.3, 1.0]
    rows = [(p, a) for p in range(len(prompts)) for a in alphas]
    batched = model.generate_ids([[c[p] for p, _ in rows] for c in ids], config, [keys[p] for p, _ in rows],
                                 batch_size=len(rows), row_weights=[[a, 1 - a] for _, a in rows])
    for alpha in alphas:
        alone = EFTModel.from_spec(f"{spec},alpha={alpha}", model_cache=cache).generate_ids(
            ids, config, keys, batch_size=len(prompts))
        assert [g.token_ids for g in alone] == [g.token_ids for g, (_, a) in zip(batched, rows) if a == alpha]
    assert len(cache) == 4  # the weights were loaded once for all four models
    assert len({tuple(g.token_ids) for g in batched}) > len(prompts)  # the alphas do sample differently


def test_scaling_analysis_gets_one_group_per_task_with_both_ends_of_the_scale() -> None:
    from eft_eval.sweep import SweepOptions, find_study
    from eft_eval.sweep._sweep import analysis_inputs

    study = load_study(find_study("scaling"))
    finished = [p.label for p in study.points if p.run["task"] == "hh" or p.names["config"] == "up"]
    runs, options = analysis_inputs(study, SweepOptions(output=Path("out")), finished)
    assert runs == {config: Path("out/runs") / f"task=hh_config={config}"
                    for config in ("small-ft", "large-ft", "up", "down")}
    assert [group["name"] for group in options["groups"]] == ["hh"]  # eli5 lacks small-ft and large-ft so far
    frontier = load_study(find_study("frontier"))
    _, options = analysis_inputs(frontier, SweepOptions(output=Path("out")), [frontier.points[-1].label])
    assert options["points"] == {"base=70B_alpha=1": {"base": "70B", "alpha": 1.0}}
    assert (options["x"], options["y"]) == ("helpfulness", "harm")


def test_generation_store_add_many_stores_a_batch_with_one_sync(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from eft_eval.pipeline import GenerationStore

    syncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real_fsync(fd)))
    store = GenerationStore(tmp_path / "generations.jsonl")
    store.add_many([("a", 0, "first"), ("a", 1, "second"), ("b", 0, "third")])
    store.add("c", 0, "fourth")
    store.close()
    assert len(syncs) == 2  # one for the batch, one for the single add
    again = GenerationStore(tmp_path / "generations.jsonl")
    assert again.get("a", 2) == ["first", "second"] and again.get("b", 1) == ["third"] and len(again) == 4
    again.close()
