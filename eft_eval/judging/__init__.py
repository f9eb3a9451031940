"""LLM judges: YAML judge specs, reasoning-then-score parsing, a cached, retrying, concurrent engine.

Typical use (what `eft-eval judge` and the pipeline do):

    judges = load_judges(["factuality", "helpfulness"])
    results = judge_items_sync([JudgeItem(query, response)], judges, JudgeConfig(concurrency=16))
    results[0]["factuality"]  # {"status": "scored", "score": 2.0, "reason": ..., "raw": ..., ...}
"""

from eft_eval.judging._backends import JudgeBackend
from eft_eval.judging._cache import Completion, JudgeCache
from eft_eval.judging._config import SMOLLM2_GGUF, JudgeConfig, default_cache_path
from eft_eval.judging._engine import (
    JudgeItem,
    Judgment,
    OnResult,
    judge_items,
    judge_items_sync,
    judge_model_name,
)
from eft_eval.judging._parse import ParsedAnswer, parse_answer, parse_score
from eft_eval.judging._records import QUERY_FIELDS, read_records
from eft_eval.judging._run import describe_config, judge_files, summarize_samples
from eft_eval.judging._spec import (
    JudgeSpec,
    ScoreSpec,
    discover_judges,
    load_judge_file,
    load_judges,
)
from eft_eval.judging._summary import summarize_judgments

__all__ = [
    "QUERY_FIELDS",
    "SMOLLM2_GGUF",
    "Completion",
    "JudgeBackend",
    "JudgeCache",
    "JudgeConfig",
    "JudgeItem",
    "JudgeSpec",
    "Judgment",
    "OnResult",
    "ParsedAnswer",
    "ScoreSpec",
    "default_cache_path",
    "describe_config",
    "discover_judges",
    "judge_files",
    "judge_items",
    "judge_items_sync",
    "judge_model_name",
    "load_judge_file",
    "load_judges",
    "parse_answer",
    "parse_score",
    "read_records",
    "summarize_judgments",
    "summarize_samples",
]
