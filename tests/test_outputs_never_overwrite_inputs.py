"""Files a command can overwrite: lock files through symlinks, outputs that are inputs, foreign run
folders, names that decide paths, half-written projects, read-only archives. Each refusal is one
line and leaves every file as it was."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from judging_helpers import answer, write_jsonl

from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.locking import LOCK_FILE, lock_folder
from eft_eval.testing import LoopbackServer

VICTIM_TEXT = "precious data of another user\n"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("eft-eval: error: "), err
    return err


def judge_argv(source: Path, out: Path, base_url: str, *extra: str) -> list[str]:
    return ["judge", "--input", str(source), "--judges", "factuality", "--output", str(out), "--base-url", base_url,
            "--no-progress", *extra]


@pytest.fixture()
def judge_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    return write_jsonl(tmp_path / "in.jsonl", [{"query": f"Q{i}?", "response": f"A{i}."} for i in range(3)])


# -- the lock file -------------------------------------------------------------------------------

def test_judge_never_writes_through_a_symlinked_lock_file(
    judge_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    out = tmp_path / "shared-out"
    out.mkdir()
    (out / LOCK_FILE).symlink_to(victim)
    with LoopbackServer(answer) as server:
        assert main(judge_argv(judge_env, out, server.base_url)) == 2
    err = one_line_error(capsys)
    assert f"{out / LOCK_FILE}: is a symbolic link" in err and "remove it" in err
    assert victim.read_text() == VICTIM_TEXT
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]


@pytest.mark.parametrize("kind", ["hardlink", "fifo", "folder"])
def test_a_lock_path_that_is_not_a_plain_file_of_its_own_is_refused(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    folder = tmp_path / "out"
    folder.mkdir()
    lock = folder / LOCK_FILE
    {"hardlink": lambda: os.link(victim, lock), "fifo": lambda: os.mkfifo(lock),
     "folder": lambda: lock.mkdir()}[kind]()
    with pytest.raises(EFTEvalError, match=r"refusing to write through it") as caught, \
            lock_folder(folder, "eft-eval judge"):
        pass
    assert len(str(caught.value).splitlines()) == 1
    assert victim.read_text() == VICTIM_TEXT


# -- names the file system refuses ---------------------------------------------------------------

def test_an_output_name_longer_than_the_file_system_allows_is_one_line(
    judge_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_folder = tmp_path / ("n" * 300)
    with LoopbackServer(answer) as server:
        assert main(judge_argv(judge_env, long_folder, server.base_url)) == 2
    err = one_line_error(capsys)
    assert str(long_folder) in err and "file name too long" in err and "choose a shorter name" in err

    # A name that fits, but not with the temporary name it is written through: the user's path is named.
    html = tmp_path / ("r" * 250 + ".html")
    assert main(["report", str(judge_env), "--html", str(html)]) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"eft-eval: error: {html}: file name too long") and ".tmp" not in err


# -- read-only archives --------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def make_read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`folder` as on a read-only mount: every write below it fails with EROFS. (Tests run as root,
    which file permissions do not stop, and mounting needs privileges: the kernel's answer is faked.)"""
    root = str(folder.resolve())

    def inside(path: Any) -> bool:
        return os.path.abspath(os.fspath(path)).startswith(root)

    def refuse(path: Any) -> OSError:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_open, real_replace, real_mkdir = os.open, os.replace, os.mkdir

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS and inside(path):
            raise refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def fake_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if inside(dst):
            raise refuse(dst)
        real_replace(src, dst, *args, **kwargs)

    def fake_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if inside(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path)) if os.path.isdir(path) \
                else refuse(path)
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "replace", fake_replace)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("lock_file", ["kept", "absent"])
def test_report_reads_a_read_only_run_folder_without_its_lock(
    judge_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, lock_file: str,
) -> None:
    archived = tmp_path / "archive" / "run"
    with LoopbackServer(answer) as server:
        assert main(judge_argv(judge_env, archived, server.base_url)) == 0
    if lock_file == "absent":
        (archived / LOCK_FILE).unlink()
    before = snapshot(archived)
    capsys.readouterr()
    make_read_only(archived, monkeypatch)
    assert main(["report", str(archived), "--rewrite-results"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "factuality" in out.splitlines()[1]  # the recomputed table is shown
    assert snapshot(archived) == before
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{archived}: read-only folder: results recomputed without its lock; results.json "
                        "left as it was"]

    # Its HTML report goes elsewhere; into the read-only folder it is one line, not a traceback.
    assert main(["report", str(archived), "--html", str(tmp_path / "report.html")]) == 0
    assert (tmp_path / "report.html").is_file()
    assert main(["report", str(archived), "--html", str(archived / "report.html")]) == 2
    assert f"{archived / 'report.html'}: Read-only file system (check its permissions" in one_line_error(capsys)
    assert snapshot(archived) == before


# -- outputs that are inputs ---------------------------------------------------------------------

@pytest.fixture()
def judged_folder(judge_env: Path, tmp_path: Path) -> Path:
    """A finished `judge` output folder (samples.jsonl, results.json): what a report reads."""
    folder = tmp_path / "judged"
    with LoopbackServer(answer) as server:
        assert main(judge_argv(judge_env, folder, server.base_url)) == 0
    return folder


def test_report_html_never_replaces_what_it_reads(
    judged_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = judged_folder / "samples.jsonl"
    before = snapshot(judged_folder)
    alias = tmp_path / "alias.html"
    alias.symlink_to(samples)
    hard = tmp_path / "hard.html"
    os.link(samples, hard)
    capsys.readouterr()
    cases = [
        ([str(judged_folder)], samples, "is inside the reported folder"),
        ([str(judged_folder)], judged_folder / "results.json", "is inside the reported folder"),
        ([str(judged_folder)], judged_folder / "run.json", "is inside the reported folder"),  # not there yet
        ([str(samples)], samples, "is the input"),
        ([str(judged_folder)], alias, "is inside the reported folder"),  # a symlink to the samples
        ([str(hard)], samples, "is the input"),  # another name of the same file
    ]
    for inputs, html, why in cases:
        assert main(["report", *inputs, "--html", str(html)]) == 2, html
        err = one_line_error(capsys)
        assert err.startswith(f"eft-eval: error: --html {html}: {why}"), err
        assert "write the report to another path" in err
        assert snapshot(judged_folder) == before
    # What the report is for still works: a page inside the folder, or anywhere else.
    assert main(["report", str(judged_folder), "--html", str(judged_folder / "report.html")]) == 0
    assert main(["report", str(samples), "--html", str(tmp_path / "elsewhere.html")]) == 0
    assert (judged_folder / "report.html").read_text().lstrip().lower().startswith("<!doctype html")


# -- judge into someone else's folder -----------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tiny_family: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `eft-eval run` folder: tiny EFT models, two documents, a loopback judge."""
    from pipeline_helpers import judge_answer, run_args

    output = tmp_path_factory.mktemp("finished") / "run"
    with LoopbackServer(judge_answer) as server:
        argv = run_args(tiny_family, output, server.base_url, "--no-progress", "--no-html", "--judges", "factuality")
        argv[argv.index("--limit") + 1] = "2"
        assert main(argv) == 0
    return output


def test_judge_refuses_to_replace_a_finished_runs_samples(
    finished_run: Path, judge_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(finished_run)
    capsys.readouterr()
    with LoopbackServer(answer) as server:
        assert main(judge_argv(judge_env, finished_run, server.base_url)) == 2
        assert server.request_count == 0  # refused before anything is asked (or paid for)
    err = one_line_error(capsys)
    assert f"{finished_run}: is the folder of an `eft-eval run` (run.json)" in err and "choose another --output" in err
    assert snapshot(finished_run) == before


def test_judge_refuses_a_judge_folder_of_other_responses_and_resumes_its_own(
    judge_env: Path, judged_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(judged_folder)
    other = write_jsonl(tmp_path / "other.jsonl",
                        [{"query": "Q0?", "response": "A0."}, {"query": "X?", "response": "Y."}])
    capsys.readouterr()
    with LoopbackServer(answer) as server:
        assert main(judge_argv(other, judged_folder, server.base_url)) == 2
        err = one_line_error(capsys)
        assert err.startswith(f"eft-eval: error: {judged_folder / 'samples.jsonl'}: holds the judgments of other "
                              "responses (row 2 differs"), err
        assert snapshot(judged_folder) == before and server.request_count == 0
        # The same responses again (all, or the first ones): a re-run.
        assert main(judge_argv(judge_env, judged_folder, server.base_url, "--limit", "2")) == 0
        assert main(judge_argv(judge_env, judged_folder, server.base_url)) == 0
        # Its own samples as the input (judged again, e.g. by another judge) are its own responses too.
        assert main(judge_argv(judged_folder / "samples.jsonl", judged_folder, server.base_url)) == 0
    rows = [json.loads(line) for line in (judged_folder / "samples.jsonl").read_text().splitlines()]
    assert [row["response"] for row in rows] == ["A0.", "A1.", "A2."]


# -- names that decide where files go -----------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def test_a_task_named_like_a_path_is_refused_before_anything_is_written(
    tiny_family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline_helpers import HH_FILE, eft_spec

    shared = tmp_path / "shared-tasks"
    shared.mkdir()
    for name in ("_judged_task.yaml", "utils.py", "hh.yaml"):
        (shared / name).write_text((REPO / "tasks" / name).read_text())
    evil = (REPO / "tasks" / "hh.yaml").read_text().replace("task: hh\n", 'task: "../../evil_task"\n')
    assert evil != (REPO / "tasks" / "hh.yaml").read_text()
    (shared / "evil.yaml").write_text(evil)
    (shared / "hh.yaml").unlink()
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with LoopbackServer(answer) as server:
        code = main(["run", "../../evil_task", "--include-path", str(shared), "--model", eft_spec(tiny_family),
                     "--data-files", str(HH_FILE), "--limit", "1", "--max-new-tokens", "2", "--base-url",
                     server.base_url, "--no-progress", "--no-html"])
        assert server.request_count == 0
    assert code == 2
    err = one_line_error(capsys)
    assert f"{shared / 'evil.yaml'}: task '../../evil_task' is not a plain name (no path separators" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "shared-tasks"]  # no evil_task beside `a`
    assert list(work.iterdir()) == []


def test_a_study_named_like_a_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from eft_eval.sweep import load_study

    text = (REPO / "studies" / "demo_frontier.yaml").read_text()
    study = tmp_path / "studies" / "escaped.yaml"
    study.parent.mkdir()
    study.write_text(text.replace("study: demo_frontier\n", 'study: "../../escaped"\n'))
    with pytest.raises(EFTEvalError, match=r"escaped.yaml: study '../../escaped' is not a plain name"):
        load_study(study)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for given in (str(study), "../../escaped"):  # by file, and by the name it declares
        assert main(["sweep", given, "--include-path", str(study.parent), "--limit", "1"]) == 2
        assert "is not a plain name" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "studies"] and list(work.iterdir()) == []


# -- human-study projects: validated first, written whole ----------------------------------------

@pytest.fixture()
def study_samples(tmp_path: Path) -> Path:
    from study_helpers import judged_sample, write_samples

    return write_samples(tmp_path / "judged.jsonl", [judged_sample(d, "m", score=float(d % 3)) for d in range(8)])


@pytest.mark.parametrize("setting", [{"error_threshold": float("nan")}, {"error_threshold": float("inf")},
                                     {"target_error_rate": float("nan")}, {"target_error_rate": 1.5},
                                     {"n": 2.5}])
def test_prepare_refuses_a_non_finite_setting_before_writing(
    study_samples: Path, tmp_path: Path, setting: dict[str, Any]
) -> None:
    from eft_eval.study import SelectionConfig, prepare

    out = tmp_path / "project"
    key, value = next(iter(setting.items()))
    with pytest.raises(EFTEvalError,
                       match=rf"human-study selection: {key}={value!r} is (not a finite|out of range|not a whole)"):
        prepare(study_samples, out, SelectionConfig(**{"n": 3, **setting}))
    assert not out.exists()
    # The corrected call needs no --force.
    project = prepare(study_samples, out, SelectionConfig(n=3, error_threshold=1.0))
    assert (project.path / "study.json").is_file()


def test_a_project_is_written_whole_or_not_at_all(
    study_samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import eft_eval.study._project as project_module
    from eft_eval.study import load_project

    out = tmp_path / "project"
    argv = ["human-study", "prepare", "--samples", str(study_samples), "--n", "3", "--out", str(out)]
    real_write_json = project_module.write_json

    def full_disk(path: Path, data: Any) -> None:  # the manifest, the last file, cannot be written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(project_module, "write_json", full_disk)
    assert main(argv) == 2
    assert "No space left on device" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judged.jsonl", "project"]  # no staging folder left
    assert [p.name for p in out.iterdir()] == [LOCK_FILE]  # no half project: an empty folder
    monkeypatch.setattr(project_module, "write_json", real_write_json)
    assert main(argv) == 0  # the same command again, no --force needed
    first = snapshot(out)
    assert load_project(out).manifest.seed == 0
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~project_module.current_umask())

    # --force over a finished project that then fails: the old project stays as it was.
    monkeypatch.setattr(project_module, "write_json", full_disk)
    assert main([*argv, "--seed", "1", "--force"]) == 2
    capsys.readouterr()
    assert snapshot(out) == first
    monkeypatch.setattr(project_module, "write_json", real_write_json)
    assert main([*argv, "--seed", "1", "--force"]) == 0
    assert load_project(out).manifest.seed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judged.jsonl", "project"]


def test_prepare_force_replaces_only_a_project_never_its_sources_or_other_files(
    study_samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from study_helpers import item_ids_by_doc, write_potato_state

    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text(VICTIM_TEXT)
    monkeypatch.chdir(work)
    prepare = ["human-study", "prepare", "--n", "3", "--force"]
    # `--out .` in a folder of other files: --force once emptied it.
    assert main([*prepare, "--samples", str(study_samples), "--out", "."]) == 2
    assert ("is not a human-study project (no study.json); --force only replaces a project "
            "folder" in one_line_error(capsys))
    # The samples the project is drawn from, inside --out: --force once deleted them while reading them.
    (work / "judged.jsonl").write_bytes(study_samples.read_bytes())
    assert main([*prepare, "--samples", "judged.jsonl", "--out", "."]) == 2
    assert "holds judged.jsonl, which this project is made from; choose another --out" in one_line_error(capsys)
    assert sorted(p.name for p in work.iterdir()) == ["judged.jsonl", "thesis.tex"]
    assert (work / "thesis.tex").read_text() == VICTIM_TEXT

    # An empty current folder may hold the project; the shell's folder stays the same folder.
    project = work / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    inode = project.stat().st_ino
    assert main([*prepare, "--samples", str(study_samples), "--out", "."]) == 0
    assert project.stat().st_ino == inode and (project / "study.json").is_file()
    capsys.readouterr()

    # `adjudicate --out PROJECT --force` would delete the annotators' work it is made from.
    ids = item_ids_by_doc(project)
    write_potato_state(project, "alice", {item: ("1", "yes") for item in ids.values()})
    assert main(["human-study", "import", str(project)]) == 0
    before = snapshot(project)
    capsys.readouterr()
    assert main(["human-study", "adjudicate", str(project), "--out", str(project), "--force"]) == 2
    assert f"{project}: holds {project}, which this project is made from" in one_line_error(capsys)
    assert snapshot(project) == before


def test_report_html_that_cannot_be_a_file_is_one_line(
    judge_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    for html, why in ((folder, f"{folder}: is a folder; give the report a file name, e.g. {folder / 'report.html'}"),
                      (judge_env / "x.html", f"{judge_env / 'x.html'}: {judge_env} is a file, not a folder")):
        assert main(["report", str(judge_env), "--html", str(html)]) == 2
        assert one_line_error(capsys).startswith(f"eft-eval: error: {why}")
    assert list(folder.iterdir()) == []
