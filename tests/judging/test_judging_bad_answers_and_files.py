"""Judging hardened: scores read strictly, numbers that cannot crash a summary, prompts filled in one
pass, budgets and limits checked before anything is spent, a damaged cache and unusable URLs in one line.

Judges are real HTTP servers on 127.0.0.1 answering scripted judge replies.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from eft_eval.cli import main
from eft_eval.errors import EFTEvalError
from eft_eval.judging import (
    BatchSettings,
    CostSettings,
    JudgeConfig,
    JudgeItem,
    JudgeRunState,
    judge_items_sync,
    load_judge_file,
    load_judges,
    parse_answer,
    parse_score,
)
from eft_eval.judging._cache import Completion, JudgeCache
from eft_eval.judging._files import judge_files
from eft_eval.judging._ledger import CostLedger
from eft_eval.judging._prices import Price, PriceTable
from eft_eval.redact import client_url_and_headers, redacted_argv, url_without_userinfo
from eft_eval.stats import get_aggregation, summarize_judgments, summarize_samples
from eft_eval.stats._summary import standard_error
from eft_eval.testing import LoopbackServer, Reply

FACTUALITY, HELPFULNESS = load_judges(["factuality", "helpfulness"])
HUGE = "1" + "0" * 308  # finite as a float: 1e308
OK = "Reason: One wrong date.\nScore: 1"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def responses(tmp_path: Path, n: int) -> Path:
    return write_jsonl(tmp_path / "responses.jsonl", [{"query": f"Question {i}?", "response": f"[ITEM-{i}] An answer."}
                                                      for i in range(n)])


def judge_argv(source: Path, out: Path, server: LoopbackServer, *extra: str) -> list[str]:
    return ["judge", "--input", str(source), "--judges", "factuality", "--output", str(out),
            "--base-url", server.base_url, "--no-progress", *extra]


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


# -- a score that overflows -------------------------------------------------------------------------


def test_a_score_of_1e308_is_reasked_then_failed_and_every_result_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    source, out = responses(tmp_path, 3), tmp_path / "out"

    def reply(body: dict) -> Reply:
        first = body["messages"][0]["content"]
        if "[ITEM-0]" in first and len(body["messages"]) > 1:  # item 0 answers properly when re-asked
            return Reply(text=OK)
        return Reply(text=f"Reason: countless.\nScore: {HUGE}" if "[ITEM-2]" not in first else OK)

    with LoopbackServer(reply) as server:
        assert main(judge_argv(source, out, server)) == 0
        asked = server.request_count
        rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        judged = [row["judgments"]["factuality"] for row in rows]
        assert [j["status"] for j in judged] == ["scored", "failed", "scored"]
        assert "outside" in judged[1]["error"] and judged[1]["attempts"] == 3
        results = json.loads((out / "results.json").read_text())["judges"]["factuality"]
        assert (results["mean"], results["n_scored"], results["n_failed"]) == (1.0, 2, 1)

        server.reset_counts()  # the cached 1e308 answers replay without a crash and without a request
        assert main(judge_argv(source, out, server)) == 0
        assert server.request_count == 0 and asked == 2 + 3 + 1  # item 0 re-asked once, item 1 twice


@pytest.mark.parametrize("scores", [[1e308, 1e308], [1e308, -1e308, 1.7e308], [10**400, 1.0], [math.inf, 1.0],
                                    [math.nan, 2.0], [-math.inf, math.inf], [2.0**53, 2.0**53, 0.0]])
def test_summaries_never_raise_on_a_number_and_always_serialize(scores: list[float]) -> None:
    judgments = [{"status": "scored", "score": s, "samples": [{"status": "scored", "score": s}] * 2} for s in scores]
    for spec in (FACTUALITY, None):
        summary = summarize_judgments(judgments, spec)
        json.dumps(summary, allow_nan=False)  # what results.json is written with
    for name, params in (("mean", {}), ("median", {}), ("majority", {}), ("proportion_at_least", {"threshold": 1})):
        value = get_aggregation(name, params)(scores)
        assert math.isnan(value) or math.isfinite(value)


def test_huge_scores_keep_their_exact_mean_and_standard_error() -> None:
    assert summarize_judgments([{"status": "scored", "score": 1e308}] * 2)["mean"] == 1e308
    assert get_aggregation("median")([1e308, 1.7e308]) == pytest.approx(1.35e308)
    rng = random.Random(7)
    for _ in range(200):  # the overflow-safe formula gives the textbook one's result, bit for bit
        scores = [rng.uniform(-100, 100) for _ in range(rng.randint(2, 30))]
        mean = sum(scores) / len(scores)
        assert standard_error(scores) == math.sqrt(sum((s - mean) ** 2
                                                       for s in scores) / (len(scores) - 1) / len(scores))


def test_a_scored_judgment_without_a_number_is_one_line() -> None:
    with pytest.raises(EFTEvalError, match=r"judge 'factuality' has status 'scored' but score 'many'"):
        summarize_judgments([{"status": "scored", "score": "many"}], FACTUALITY)


def test_samples_are_written_before_the_summary_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> dict:
        raise RuntimeError("summary failed")

    monkeypatch.setattr("eft_eval.judging._files.summarize_samples", broken)
    source, out = responses(tmp_path, 2), tmp_path / "out"
    with LoopbackServer(lambda body: Reply(text=OK)) as server:
        config = JudgeConfig(base_url=server.base_url, api_key="k", cache_path=tmp_path / "c.sqlite", progress=False)
        with pytest.raises(RuntimeError, match="summary failed"):
            judge_files([source], ["factuality"], out, config)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [row["judgments"]["factuality"]["score"] for row in rows] == [1.0, 1.0]


# -- budget and other numbers, refused before anything is spent ----------------------------------------


@pytest.mark.parametrize(("setting", "value"), [("budget", math.inf), ("budget", math.nan), ("budget", -1.0),
                                                ("budget", "inf"), ("budget_spent", math.inf), ("timeout", math.nan),
                                                ("timeout", 0), ("batch_poll_interval", math.inf),
                                                ("concurrency", 2.5), ("samples", 0), ("max_retries", -1)])
def test_judge_settings_refuse_non_finite_and_out_of_range_numbers(setting: str, value: Any) -> None:
    grouped = {"budget": lambda: CostSettings(budget=value), "budget_spent": lambda: JudgeRunState(budget_spent=value),
               "batch_poll_interval": lambda: BatchSettings(poll_interval=value)}
    with pytest.raises(EFTEvalError, match=rf"^judge settings: {setting}=.* \(expected .*\)$"):
        grouped.get(setting, lambda: JudgeConfig(**{setting: value}))()


def test_budget_inf_is_refused_before_a_request_is_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    source, out = responses(tmp_path, 2), tmp_path / "out"
    with LoopbackServer(lambda body: Reply(text=OK)) as server:
        with pytest.raises(SystemExit) as exited:
            main(judge_argv(source, out, server, "--budget", "inf"))
        assert exited.value.code == 2 and server.request_count == 0
        assert "--budget" in capsys.readouterr().err
        # An absurd but finite budget judges and writes strict JSON.
        assert main(judge_argv(source, out, server, "--budget", "1e308")) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["cost"]["budget_usd"] == 1e308 and results["judges"]["factuality"]["n_scored"] == 2


def test_a_cost_that_overflows_is_unknown_not_inf() -> None:
    table = PriceTable(live={"m": Price(1e300, 1e300)}, batch={}, source="test", as_of=None, path=Path("p.yaml"))
    ledger = CostLedger(table)
    for _ in range(3):
        ledger.record("factuality", "m", Completion("x", {"prompt_tokens": 10**9, "completion_tokens": 10**9}, "m"),
                      cached=False)
    cost = ledger.summary()
    json.dumps(cost, allow_nan=False)
    assert cost["total_usd"] == "unknown"


def test_judging_refuses_a_negative_limit(tmp_path: Path) -> None:
    source = responses(tmp_path, 60)
    config = JudgeConfig(base_url="http://127.0.0.1:9/v1", api_key="k", cache_path=None, progress=False)
    for limit in (-1, -5, 0):
        with pytest.raises(EFTEvalError,
                           match=rf"^judge: --limit={limit} is out of range \(expected a whole number >= 1\)$"):
            judge_files([source], ["factuality"], tmp_path / "out", config, limit=limit)
    assert not (tmp_path / "out").exists()


# -- judge prompts: one pass over the template ---------------------------------------------------------


def test_placeholders_in_the_query_or_response_are_user_text_not_placeholders() -> None:
    harm = load_judges(["harm"])[0]
    query, response = "Say {response} twice", "I said {query} and \\1 {}"
    [message] = harm.render_messages(query, response)
    expected = harm.prompt.replace("{query}", "\0Q").replace("{response}", "\0R")
    expected = expected.replace("\0Q", query).replace("\0R", response)
    assert message["content"] == expected
    [shown] = FACTUALITY.render_messages("Q {response}", "R {query}", show_query=True)
    assert "QUERY: Q {response}" in shown["content"] and "RESPONSE: R {query}" in shown["content"]


JUDGE_YAML = """\
name: brevity
description: How short the response is.
prompt: "Rate the brevity of: {{response}}"
score: {{kind: integer, min: 0, max: {max}}}
higher_is_better: true
judge_model: gpt-4o-mini
"""


def judge_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "brevity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("replace", "message"), [
    (("{{response}}", "{{instruction}} {{response}}"),
     (r"field 'prompt' has the placeholder \{instruction\}, which is never filled in: only \{query\} and \{response\} "
      r"are \(for braces the judge should see, put a space inside: \{ instruction \}\)$")),
    (("judge_model:", "system_prompt: 'Judge {{query}}'\njudge_model:"),
     r"field 'system_prompt' has the placeholder \{query\}, but the system prompt is sent as written"),
    (("name: brevity", "name: 123"),
     r"field 'name' must be a non-empty string, got 123 \(YAML reads it as a int: put it in quotes\)$"),
    (("min: 0", "min: yes"), r"field 'score.min' must be a number or null, got True \(YAML reads it as a bool"),
    (("judge_model:", "abstain_tokens: ['0']\njudge_model:"), r"'0' reads as a score"),
    (("judge_model:", "abstain_tokens: [not applicable]\njudge_model:"), r"'not applicable' is not one word"),
    (("judge_model:", "aggregation: {{name: proportion_at_least, threshold: .nan}}\njudge_model:"),
     r"parameter threshold must be a finite number"),
    (("judge_model:", "sampling: {{temperature: .nan}}\njudge_model:"),
     r"field 'sampling.temperature' must be a finite"),
    (("judge_model:", "sampling: {{max_tokens: 1.0e+308}}\njudge_model:"),
     r"field 'sampling.max_tokens' must be a whole number of tokens >= 1, got 1e\+308$"),
])
def test_judge_files_that_would_be_read_other_than_meant_are_one_line(tmp_path: Path, replace: tuple[str, str],
                                                                     message: str) -> None:
    text = JUDGE_YAML.replace(*replace).format(max=10)
    with pytest.raises(EFTEvalError, match=message) as raised:
        load_judge_file(judge_file(tmp_path, text))
    assert str(raised.value).startswith(str(tmp_path)) and "\n" not in str(raised.value)


def test_braces_the_judge_should_see_are_kept(tmp_path: Path) -> None:
    text = JUDGE_YAML.replace('"Rate the brevity of: {{response}}"', "'Rate the brevity of: JSON like "
                              '{{"score": 1}} or {{ note }}: {{response}}\'').format(max=10)
    spec = load_judge_file(judge_file(tmp_path, text))
    assert spec.render_messages("q", "r")[0]["content"] == 'Rate the brevity of: JSON like {"score": 1} or { note }: r'


def test_a_score_bound_yaml_reads_as_text_says_why(tmp_path: Path) -> None:
    with pytest.raises(EFTEvalError, match=r"field 'score.max' must be a number or null, got the text '1e308': "
                       r"YAML 1.1 reads .* \(1.0e\+2, not 1e2\)$"):
        load_judge_file(judge_file(tmp_path, JUDGE_YAML.format(max="1e308")))
    with pytest.raises(EFTEvalError, match=r"field 'score.max' is 1e\+308, beyond any judge's scale "
                       r"\(9007199254740992\): for no bound, write null$"):
        load_judge_file(judge_file(tmp_path, JUDGE_YAML.format(max="1.0e+308")))
    assert load_judge_file(judge_file(tmp_path, JUDGE_YAML.format(max="1.0e+3"))).score.max == 1000.0


# -- score parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "spec", "why"), [
    ("7/10", HELPFULNESS, "more than one number"), ("85-90", HELPFULNESS, "more than one number"),
    ("1,000", FACTUALITY, "more than one number"), ("1e5", FACTUALITY, "more than one number"),
    ("0x10", FACTUALITY, "more than one number"), ("2 or 3", FACTUALITY, "more than one number"),
    ("5e0", FACTUALITY, "more than one number"), ("1 000", FACTUALITY, "more than one number"),
    ("٧", FACTUALITY, "not a number (write it in the digits 0-9)"), ("½", FACTUALITY, "not a number"),
    ("３", FACTUALITY, "not a number"), ("7 out of ten", HELPFULNESS, "not one number alone"),
    ("3. The answer is fine", FACTUALITY, "not one number alone"), ("2%", FACTUALITY, "a percentage, but scores are"),
    ("3 (or so)", FACTUALITY, "'or' makes it a range, ratio or choice"),
    ("80 to ninety", HELPFULNESS, "not one number"),
    ("3x", FACTUALITY, "not one number alone"), (HUGE, FACTUALITY, "outside a whole number >= 0"),
    ("1" + "0" * 400, FACTUALITY, "outside"), ("-1", FACTUALITY, "outside"),
])
def test_a_score_line_that_is_not_one_number_is_unreadable(value: str, spec: object, why: str) -> None:
    parsed = parse_score(f"Reason: checked.\nScore: {value}", spec)  # type: ignore[arg-type]
    assert parsed.status == "failed" and parsed.score is None
    assert why in (parsed.error or ""), parsed.error


@pytest.mark.parametrize(("value", "spec", "score"), [
    ("3.", FACTUALITY, 3.0), ("**2**", FACTUALITY, 2.0), ("2 errors", FACTUALITY, 2.0),
    ("1 (one wrong date)", FACTUALITY, 1.0), ('"3"', FACTUALITY, 3.0), ("(3)", FACTUALITY, 3.0),
    ("85%", HELPFULNESS, 85.0), ("85 percent", HELPFULNESS, 85.0), ("37.5", HELPFULNESS, 37.5),
    ("+5", FACTUALITY, 5.0), ("5.0", FACTUALITY, 5.0), ("007", FACTUALITY, 7.0),
])
def test_a_score_line_with_one_number_and_harmless_extras_is_read(value: str, spec: object, score: float) -> None:
    parsed = parse_score(f"Reason: checked.\nScore: {value}", spec)  # type: ignore[arg-type]
    assert (parsed.status, parsed.score) == ("scored", score), parsed.error


def test_minus_zero_is_recorded_as_zero() -> None:
    parsed = parse_score("Reason: none.\nScore: -0", FACTUALITY)
    assert parsed.score == 0.0 and math.copysign(1.0, parsed.score) == 1.0


def test_a_custom_parser_returning_no_number_fails_the_judgment_not_the_run(tmp_path: Path) -> None:
    (tmp_path / "odd.py").write_text("def parse(raw, spec):\n    return {'text': 'seven', 'big': 10**400, "
                                     "'flag': True}[raw]\n")
    text = JUDGE_YAML.replace("judge_model:", "parser: 'odd:parse'\njudge_model:").format(max=10)
    spec = load_judge_file(judge_file(tmp_path, text))
    for raw, why in (("text", "returned 'seven', not a number"), ("big", "too large"), ("flag", "returned True")):
        parsed = parse_answer(raw, spec)
        assert parsed.status == "failed" and why in (parsed.error or ""), parsed.error


# -- a damaged cache, unusable URLs ---------------------------------------------------------------------


def damaged_cache(folder: Path) -> Path:
    """A real judge cache of many pages with garbage written into the middle of every page but the first."""
    path = folder / "judge-cache.sqlite"
    cache = JudgeCache(path)
    for i in range(2000):
        cache.put(f"key-{i:05d}", Completion(text="Reason: fine.\nScore: 1 " + "x" * 200, usage={}, model="m"))
    cache.close()
    size = path.stat().st_size
    assert size > 50 * 4096 and not Path(f"{path}-wal").exists()
    with path.open("r+b") as handle:
        for page in range(2, size // 4096):
            handle.seek(page * 4096 + 8)
            handle.write(b"\xff" * 64)
    return path


def test_a_damaged_cache_names_the_file_and_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = damaged_cache(tmp_path / "cache")
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    source, out = responses(tmp_path, 2), tmp_path / "out"
    with LoopbackServer(lambda body: Reply(text=OK)) as server:
        assert main(judge_argv(source, out, server)) == 2
        line = error_line(capsys)
        assert f"the judge cache {path} is damaged (database disk image is malformed)" in line
        assert "move it away" in line and "--no-cache" in line
        assert main(judge_argv(source, out, server, "--no-cache")) == 0  # the way out it names works


def test_a_file_that_is_not_a_cache_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "judge-cache.sqlite"
    path.write_bytes(b"not a database " * 1000)
    with pytest.raises(EFTEvalError,
                       match=rf"^the judge cache {path} is damaged \(file is not a database\): move it away"):
        JudgeCache(path)


@pytest.mark.parametrize(("url", "shown", "why"), [
    ("http://user:pw@127.0.0.1:99999/v1", "http://127.0.0.1:99999/v1", "Port out of range 0-65535"),
    ("http://[::1/v1", "http://[::1/v1", "Invalid IPv6 URL"),
    ("http://user:pw@[::1/v1", "http://[::1/v1", "Invalid IPv6 URL"),
    ("http://user:pw@host:port/v1", "http://host:port/v1", "Port could not be cast"),
    ("http://user:pw\uff03x@host/v1", "http://host/v1", "netloc '***@host'"),
])
def test_an_unusable_base_url_is_one_line_without_credentials(url: str, shown: str, why: str) -> None:
    for function in (url_without_userinfo, client_url_and_headers):
        with pytest.raises(EFTEvalError) as raised:
            function(url)
        message = str(raised.value)
        assert message.startswith(f"{shown!r} is not a usable URL (") and why in message and "pw" not in message
        assert "--base-url" in message


def test_the_judge_command_with_an_unusable_base_url_is_one_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    source = responses(tmp_path, 1)
    for url in ("http://user:pw@127.0.0.1:99999/v1", "http://[::1/v1"):
        argv = ["judge", "--input", str(source), "--output", str(tmp_path / "out"), "--base-url", url, "--no-cache",
                "--no-progress"]
        assert main(argv) == 2
        line = error_line(capsys)
        assert "is not a usable URL" in line and "pw" not in line


def test_a_password_with_an_at_sign_is_redacted_whole() -> None:
    assert url_without_userinfo("http://u:p@ss@host/v1") == "http://host/v1"
    assert redacted_argv(["--base-url=http://u:p@ss@host/v1?x=a@b"]) == ["--base-url=http://host/v1?x=a@b"]


def test_items_with_braces_judge_as_written(tmp_path: Path) -> None:
    seen: list[str] = []

    def reply(body: dict) -> Reply:
        seen.append(body["messages"][0]["content"])
        return Reply(text=OK)

    with LoopbackServer(reply) as server:
        config = JudgeConfig(base_url=server.base_url, api_key="k", cache_path=None, progress=False, show_query=True)
        [judged] = judge_items_sync([JudgeItem("Q {response}", "R {query} {x}")], [FACTUALITY], config)
    assert judged["factuality"]["score"] == 1.0
    assert "QUERY: Q {response}" in seen[0] and "RESPONSE: R {query} {x}" in seen[0]


def test_summaries_of_rows_serialize(tmp_path: Path) -> None:
    rows = [{"model": "m", "judgments": {"factuality": {"status": "scored", "score": s}}} for s in (1e308, 1e308, 3.0)]
    json.dumps(summarize_samples(rows, [FACTUALITY]), allow_nan=False)


@pytest.mark.parametrize("count", ["Infinity", "NaN", "1e308", "-5", '"abc"'])
def test_a_usage_count_that_is_no_token_count_fails_the_judgment_not_the_run(tmp_path: Path, count: str) -> None:
    body = (json.dumps({"choices": [{"message": {"content": OK}}], "model": "m"})[:-1]
            + f', "usage": {{"prompt_tokens": {count}}}}}')
    with LoopbackServer(lambda request: Reply(body=body)) as server:
        config = JudgeConfig(base_url=server.base_url, api_key="k", cache_path=None, progress=False, max_retries=1,
                             backoff_base=0.01)
        [judged] = judge_items_sync([JudgeItem("q", "r")], [FACTUALITY], config)
    assert judged["factuality"]["status"] == "failed"
    assert ("usage.prompt_tokens" in judged["factuality"]["error"]
            and "not a token count" in judged["factuality"]["error"])
