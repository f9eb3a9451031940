"""LLM judges: YAML judge specs, reasoning-then-score parsing, a cached, retrying, concurrent engine.

Typical use (what `eft-eval judge` and the pipeline do):

    judges = load_judges(["factuality", "helpfulness"])
    results = judge_items_sync([JudgeItem(query, response)], judges, JudgeConfig(concurrency=16))
    results[0]["factuality"]  # {"status": "scored", "score": 2.0, "reason": ..., "raw": ..., ...}
"""

from eft_eval.judging._backends import BatchesSubmitted, CollectingBackend, JudgeBackend, OpenAIBackend
from eft_eval.judging._batch import BatchState, cancel_batches
from eft_eval.judging._cache import Completion, JudgeCache
from eft_eval.judging._config import (
    JUDGE_SETTINGS,
    BatchSettings,
    CostSettings,
    JudgeConfig,
    JudgeRunState,
    LocalModelSettings,
    default_cache_path,
)
from eft_eval.judging._engine import (
    JudgeItem,
    Judgment,
    OnResult,
    count_uncached,
    judge_items,
    judge_items_sync,
    judge_model_name,
)
from eft_eval.judging._files import describe_config, judge_files
from eft_eval.judging._ledger import CostLedger, JudgingStopped, describe_cost, new_ledger
from eft_eval.judging._parse import ParsedAnswer, parse_answer, parse_score
from eft_eval.judging._preflight import preflight
from eft_eval.judging._prices import PriceTable, load_prices
from eft_eval.judging._records import QUERY_FIELDS, read_records
from eft_eval.judging._spec import (
    JUDGE_ALIASES,
    JudgeSpec,
    ScoreSpec,
    canonical_judge_name,
    discover_judges,
    is_judge_file,
    load_judge_file,
    load_judges,
)
from eft_eval.judging._table import format_results_table

__all__ = [
    "JUDGE_ALIASES",
    "JUDGE_SETTINGS",
    "QUERY_FIELDS",
    "BatchSettings",
    "BatchState",
    "BatchesSubmitted",
    "CollectingBackend",
    "Completion",
    "CostLedger",
    "CostSettings",
    "JudgeBackend",
    "JudgeCache",
    "JudgeConfig",
    "JudgeItem",
    "JudgeRunState",
    "JudgeSpec",
    "JudgingStopped",
    "Judgment",
    "LocalModelSettings",
    "OnResult",
    "OpenAIBackend",
    "ParsedAnswer",
    "PriceTable",
    "ScoreSpec",
    "cancel_batches",
    "canonical_judge_name",
    "count_uncached",
    "default_cache_path",
    "describe_config",
    "describe_cost",
    "discover_judges",
    "format_results_table",
    "is_judge_file",
    "judge_files",
    "judge_items",
    "judge_items_sync",
    "judge_model_name",
    "load_judge_file",
    "load_judges",
    "load_prices",
    "new_ledger",
    "parse_answer",
    "parse_score",
    "preflight",
    "read_records",
]
