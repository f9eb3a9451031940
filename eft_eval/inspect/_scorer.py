"""eft-eval's judges as inspect scorers: `judge_scorer("factuality")`, or any judge YAML of your own.

    @task
    def hh():
        return Task(dataset=..., solver=generate(), scorer=[judge_scorer("helpfulness"), judge_scorer("harm")])

The choice: the judge's *call* goes through an inspect model, its *judging* through eft-eval's
engine. `judging.judge_items` renders the judge's prompt, reads the reasoning-then-score answer,
re-asks with the parse error when it cannot be read and records abstentions, exactly as
`eft-eval judge` does; only its backend is inspect's model (`InspectJudgeBackend`). So inspect's
providers, model roles, retries, rate limits and its log of every judge call apply, and the scores
are the ones `eft-eval judge` gives for the same answers. The model is, in this order: `model=`,
the `grader` model role (`--model-role grader=openai/gpt-4o`), the judge YAML's `judge_model` on
inspect's OpenAI provider (`openai/gpt-4-0613` for the paper's judges).

A score's value is the judge's number; an abstention or an answer that stays unreadable is
inspect's unscored score (`Score.unscored`: NaN, left out by `mean`, `stderr` and the epoch
reducers, counted in the log's `unscored_samples`), never a 0 that would be averaged in.
The score's metadata holds the judgment's status, raw answer, attempts and the judge's direction
(`higher_is_better`), as `eft-eval judge` records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai.model import GenerateConfig, Model, get_model
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from eft_eval.errors import EFTEvalError
from eft_eval.judging import Completion, JudgeConfig, JudgeItem, JudgeSpec, judge_items, load_judge_file, load_judges

_PARAMS = {"temperature": "temperature", "max_tokens": "max_tokens", "max_completion_tokens": "max_tokens",
           "top_p": "top_p", "top_k": "top_k", "seed": "seed", "stop": "stop_seqs",
           "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty",
           "reasoning_effort": "reasoning_effort"}
"""A judge YAML's `sampling` keys (chat-completion parameters) and the `GenerateConfig` field of each."""


def generate_config(params: dict[str, Any], spec: JudgeSpec) -> GenerateConfig:
    """A judge request's parameters as inspect's `GenerateConfig`; a key it has no field for is an error."""
    fields: dict[str, Any] = {}
    for key, value in params.items():
        if key not in _PARAMS:
            where = spec.source or spec.name
            raise EFTEvalError(f"judge {spec.name} ({where}): sampling key {key!r} has no inspect GenerateConfig "
                               f"field (known: {', '.join(sorted(_PARAMS))})")
        fields[_PARAMS[key]] = [value] if key == "stop" and isinstance(value, str) else value
    return GenerateConfig(**fields)


class InspectJudgeBackend:
    """A `judging.JudgeBackend` whose answers come from an inspect model."""

    def __init__(self, model: str | Model | None) -> None:
        self.model = model

    def inspect_model(self, judge_model: str) -> Model:
        if isinstance(self.model, Model):
            return self.model
        return get_model(self.model, role="grader", default=self.model or f"openai/{judge_model}")

    async def complete(self, messages: list[dict[str, str]], model: str, params: dict[str, Any],
                       spec: JudgeSpec) -> Completion:
        from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

        kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
        chat = [kinds[m["role"]](content=m["content"]) for m in messages]
        judge = self.inspect_model(model)
        output = await judge.generate(chat, config=generate_config(params, spec))
        usage = output.usage
        counts = {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                  "total_tokens": usage.total_tokens} if usage is not None else {}
        return Completion(text=output.completion, usage=counts, model=str(judge))

    async def aclose(self) -> None:
        return None


def load_judge(judge: str | Path, include_path: Sequence[str] | None = None) -> JudgeSpec:
    """A judge by name (built-in or in `include_path` folders) or by the path of its YAML file."""
    text = str(judge)
    if text.endswith((".yaml", ".yml")):
        if not Path(text).is_file():
            raise EFTEvalError(f"judge file {text} does not exist")
        return load_judge_file(Path(text))
    [spec] = load_judges([text], list(include_path or []))
    return spec


def judge_scorer(
    judge: str | Path,
    *,
    model: str | Model | None = None,
    include_path: Sequence[str] | None = None,
    show_query: bool = False,
    max_parse_retries: int = 2,
) -> Scorer:
    """An inspect scorer asking one judge (a name, or a judge YAML file) to score each sample's answer.

    The judge sees the sample's input as the query and the model's completion as the response,
    through the same prompt (`show_query`: the judge's `prompt_with_query`), parsing, re-asks
    (`max_parse_retries`) and abstentions as `eft-eval judge`.
    """
    spec = load_judge(judge, include_path)
    config = JudgeConfig(cache_path=None, progress=False, show_query=show_query, max_parse_retries=max_parse_retries)
    backend = InspectJudgeBackend(model)

    @scorer(metrics=[mean(), stderr()], name=spec.name,
            higher_is_better=spec.higher_is_better)
    def make() -> Scorer:
        async def score(state: TaskState, target: Target) -> Score:
            item = JudgeItem(query=state.input_text, response=state.output.completion)
            [found] = await judge_items([item], [spec], config, backend=backend)
            judgment = found[spec.name]
            status = judgment["status"]
            explanation = judgment.get("reason") or judgment.get("error") or ""
            metadata = {"judge": spec.name, "status": status, "raw": judgment.get("raw", ""),
                        "attempts": judgment.get("attempts"), "judge_model": judgment.get("model"),
                        "higher_is_better": spec.higher_is_better, "direction": spec.direction}
            if status == "scored":
                return Score(value=float(judgment["score"]), answer=item.response, explanation=explanation,
                             metadata=metadata)
            # No number, and never a 0 averaged in: inspect's unscored sentinel, which its metrics
            # and epoch reducers leave out.
            return Score.unscored(reason="grader_failed" if status == "failed" else None, answer=item.response,
                                  explanation=explanation, metadata=metadata)

        return score

    return make()


__all__ = ["InspectJudgeBackend", "generate_config", "judge_scorer", "load_judge"]
