"""The cost ledger: token usage per judge, judge model and mode (live / batch), priced; and `--budget`.

Every answer a judgment used is recorded, whether it was asked now or replayed from the cache
(`cached_requests`): the ledger says what the judgments in `results.json` cost, and `new_usd` what
this run spent. Costs of models without a price are "unknown", never 0, and so is any total that
includes them.

The budget is enforced twice: before judging, `estimate` prices every request not in the cache at
its prompt tokens plus its answer limit, and the run stops with one line if that exceeds the
budget; while judging, every request reserves its worst case first and is not sent (the judgment
fails with the reason) if spending plus reservations could pass the budget. So a run within its
budget stays within it, even when re-asks add requests the estimate could not foresee.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.judging._cache import Completion
from eft_eval.judging._prices import PriceTable, answer_limit, count_prompt_tokens

Unknown = str
UNKNOWN: Unknown = "unknown"


class JudgingStopped(EFTEvalError):
    """Judging stopped with an error (its one-line message) after paying `spent_usd` for new answers;
    `estimate_usd` is the worst case of what it had left to ask (with a budget). A sweep counts both
    against its budget: the error does not undo what was paid or submitted."""

    def __init__(self, message: str, spent_usd: float, estimate_usd: float | None) -> None:
        super().__init__(message)
        self.spent_usd = spent_usd
        self.estimate_usd = estimate_usd


class BudgetExceeded(Exception):
    """A request that could take spending past the budget; it is not sent."""


@dataclass
class _Line:
    requests: int = 0
    cached_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    new_prompt_tokens: int = 0
    new_completion_tokens: int = 0


@dataclass
class CostLedger:
    prices: PriceTable
    budget: float | None = None
    spent_before: float = 0.0
    """Spent against `budget` before this ledger (earlier runs of a sweep)."""
    lines: dict[tuple[str, str, str], _Line] = field(default_factory=dict)
    reserved: float = 0.0
    token_count_method: str | None = None
    estimate_usd: float | None = None

    def record(self, judge: str, model: str, completion: Completion, cached: bool) -> None:
        mode = "batch" if completion.usage.get("batch") else "live"
        line = self.lines.setdefault((judge, model, mode), _Line())
        prompt = int(completion.usage.get("prompt_tokens", 0))
        answer = int(completion.usage.get("completion_tokens", 0))
        line.requests += 1
        line.prompt_tokens += prompt
        line.completion_tokens += answer
        if cached:
            line.cached_requests += 1
        else:
            line.new_prompt_tokens += prompt
            line.new_completion_tokens += answer

    # -- budget ----------------------------------------------------------------------------------
    def worst_case(self, model: str, mode: str, messages: Sequence[Mapping[str, str]],
                   params: Mapping[str, Any]) -> float:
        price = self.prices.price(model, mode)
        if price is None:
            raise EFTEvalError(f"cannot keep to --budget: judge model {model!r} has no price in {self.prices.path} "
                               "(add it to a table given with --prices FILE)")
        tokens, self.token_count_method = count_prompt_tokens(messages, model)
        return price.cost(tokens, answer_limit(params))

    def reserve(self, amount: float) -> None:
        if self.budget is None:
            return
        spent = self.new_usd()
        assert not isinstance(spent, str)  # a budget is only accepted with every model priced
        spent += self.spent_before
        if spent + self.reserved + amount > self.budget:
            raise BudgetExceeded(f"--budget ${self.budget:.4f} reached (spent ${spent:.4f}, "
                                 f"${self.reserved:.4f} in flight, this request up to ${amount:.4f}); not sent")
        self.reserved += amount

    def release(self, amount: float) -> None:
        if self.budget is not None:
            self.reserved = max(0.0, self.reserved - amount)

    # -- totals ----------------------------------------------------------------------------------
    def _cost(self, model: str, mode: str, prompt: int, answer: int) -> float | Unknown:
        price = self.prices.price(model, mode)
        return UNKNOWN if price is None else price.cost(prompt, answer)

    def total_usd(self) -> float | Unknown:
        return _sum(self._cost(m, mode, ln.prompt_tokens, ln.completion_tokens)
                    for (_, m, mode), ln in self.lines.items())

    def new_usd(self) -> float | Unknown:
        return _sum(self._cost(m, mode, ln.new_prompt_tokens, ln.new_completion_tokens)
                    for (_, m, mode), ln in self.lines.items())

    def stopped(self, error: EFTEvalError) -> JudgingStopped:
        """`error`, raised out of judging, with what this ledger's run spent and had estimated."""
        spent = self.new_usd()
        return JudgingStopped(str(error), spent if isinstance(spent, float) else 0.0, self.estimate_usd)

    def left_usd(self) -> float | None:
        """What the budget leaves for this ledger's run (None without a budget)."""
        return None if self.budget is None else self.budget - self.spent_before

    def summary(self) -> dict[str, Any]:
        """results.json's `cost` (docs/formats.md)."""
        rows = []
        for (judge, model, mode), line in sorted(self.lines.items()):
            rows.append({"judge": judge, "judge_model": model, "mode": mode, "requests": line.requests,
                         "cached_requests": line.cached_requests, "prompt_tokens": line.prompt_tokens,
                         "completion_tokens": line.completion_tokens,
                         "usd": _round(self._cost(model, mode, line.prompt_tokens, line.completion_tokens))})
        by_mode = {mode: _round(_sum(self._cost(m, md, ln.prompt_tokens, ln.completion_tokens)
                                     for (_, m, md), ln in self.lines.items() if md == mode))
                   for mode in ("live", "batch")}
        return {"currency": "USD", "total_usd": _round(self.total_usd()), "new_usd": _round(self.new_usd()),
                "by_mode_usd": by_mode, "budget_usd": self.budget,
                **({"budget_spent_before_usd": _round(self.spent_before)} if self.spent_before else {}),
                "estimate_usd": _round(self.estimate_usd),
                "token_count_method": self.token_count_method, "prices": self.prices.describe(), "by_judge": rows}


def _sum(costs: Any) -> float | Unknown:
    total = 0.0
    for cost in costs:
        if isinstance(cost, str):
            return UNKNOWN
        total += cost
    return total


def _round(value: float | Unknown | None) -> float | Unknown | None:
    if isinstance(value, float) and not math.isfinite(value):  # absurd prices overflowed: no known cost
        return UNKNOWN
    return round(value, 6) if isinstance(value, float) else value


LOCAL_COST = "local (no API cost)"
"""What a judge model run on this machine (`--backend local`) costs, in words: never `$0.0000`."""


def describe_cost(cost: Mapping[str, Any]) -> str:
    """One line for the terminal: total, live/batch split, this run's part; judges run locally are
    said to cost nothing in words, so a $0 is never mistaken for a free paid model or a missing price."""
    def money(value: Any) -> str:
        return f"${value:.4f}" if isinstance(value, (int, float)) else str(value)

    models = {str(row.get("judge_model", "")) for row in cost.get("by_judge") or []}
    if models and all(model.startswith("local:") for model in models):
        return f"judge cost: {LOCAL_COST}"
    modes = ", ".join(f"{mode} {money(value)}" for mode, value in cost["by_mode_usd"].items() if value)
    return (f"judge cost: {money(cost['total_usd'])}" + (f" ({modes})" if modes else "")
            + f"; spent by this run: {money(cost['new_usd'])}"
            + (f" of budget ${cost['budget_usd']:.2f}" if cost.get("budget_usd") is not None else ""))


def new_ledger(config: Any, spent_before: float = 0.0) -> CostLedger:
    """The ledger of one run: prices from `config.cost.prices` (else the shipped table), its budget,
    of which `spent_before` USD went to earlier runs of the same sweep."""
    from eft_eval.judging._prices import load_prices

    return CostLedger(load_prices(config.cost.prices), config.cost.budget, spent_before)
