"""A refused key, a wrong URL or a server that is down stops `run` before generating,
and `judge` before asking; `judge` exits non-zero when every judgment failed. A real
OpenAI-compatible loopback server that checks the key as OpenAI and `vllm serve --api-key` do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_helpers import judge_answer, run_args

from eft_eval.cli import main
from eft_eval.judging import JudgeConfig, load_judges, preflight
from eft_eval.study._potato import free_port
from eft_eval.testing import LoopbackServer, Reply

KEY = "sk-right-key"


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("eft-eval: error: ") and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("case", ["wrong key", "wrong url", "server down"])
def test_run_stops_before_generating(
    case: str, tiny_family: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key" if case == "wrong key" else KEY)
    output = tmp_path / "run"
    with LoopbackServer(judge_answer, api_key=KEY) as server:
        url = {"wrong key": server.base_url, "wrong url": server.base_url.removesuffix("/v1") + "/api",
               "server down": f"http://127.0.0.1:{free_port()}/v1"}[case]
        code = main(run_args(tiny_family, output, url, "--limit", "1", "--judges", "factuality"))
        assert server.request_count == 0  # no chat completion was ever sent
    assert code == 2
    err = _one_line(capsys)
    expected = {"wrong key": "the judge server refused the request (HTTP 401",
                "wrong url": "refused the request (HTTP 404",
                "server down": "cannot reach the judge server at http://127.0.0.1:"}[case]
    assert expected in err and "sk-wrong-key" not in err
    assert not output.exists()  # nothing generated, nothing written


def test_judge_stops_on_a_refused_key_and_fails_when_every_judgment_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EFT_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"query": f"Q{i}?", "response": f"A{i}."}) + "\n" for i in range(3)))
    out = tmp_path / "out"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    with LoopbackServer(api_key=KEY) as server:
        argv = ["judge", "--input", str(source), "--judges", "factuality", "--output", str(out),
                "--base-url", server.base_url, "--no-progress", "--max-retries", "0"]
        assert main(argv) == 2
        assert "HTTP 401" in _one_line(capsys) and server.request_count == 0 and not out.exists()

    # The key is right but every request fails (HTTP 400 is not retried): exit non-zero, one line,
    # the failed judgments still written (a re-run retries them).
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with LoopbackServer(lambda body: Reply(status=400), api_key=KEY) as server:
        argv[argv.index("--base-url") + 1] = server.base_url
        assert main(argv) == 2
        assert server.request_count == 3
    assert "every judgment failed (3 of 3; first error: HTTP 400" in _one_line(capsys)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [row["judgments"]["factuality"]["status"] for row in rows] == ["failed"] * 3


def test_without_a_models_route_one_token_per_model_decides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without GET /models (404), or a key that may chat but not list models (403): the
    preflight asks each judge model for one token instead, and stops only if that is refused."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"query": f"Q{i}?", "response": f"A{i}."}) + "\n" for i in range(3)))

    def argv(server: LoopbackServer, out: str) -> list[str]:
        return ["judge", "--input", str(source), "--judges", "factuality", "--output", str(tmp_path / out),
                "--base-url", server.base_url, "--no-progress", "--no-cache", "--judge-model", "no-such-model"]

    with LoopbackServer(lambda body: Reply(status=404), api_key=KEY, models_status=404) as server:
        assert main(argv(server, "o1")) == 2
        assert server.request_count == 1 and server.requests[0]["max_tokens"] == 1
    err = _one_line(capsys)
    assert "refused the request (HTTP 404" in err and "--judge-model 'no-such-model'" in err
    assert not (tmp_path / "o1").exists()

    with LoopbackServer(judge_answer, api_key=KEY, models_status=403) as server:
        assert main(argv(server, "o2")) == 0
        assert server.request_count == 1 + 3  # the one-token probe, then the judgments


def test_preflight_costs_no_completion_and_the_local_backend_needs_none() -> None:
    judges = load_judges(["factuality", "helpfulness"])
    with LoopbackServer(api_key=KEY) as server:
        preflight(JudgeConfig(base_url=server.base_url, api_key=KEY), judges)
        assert server.models_requests == 1 and server.request_count == 0  # one GET /models per endpoint
    # Nothing listens there: the local backend never looks.
    preflight(JudgeConfig(backend="local", base_url=f"http://127.0.0.1:{free_port()}/v1"), judges)
