"""A pairwise judge that answers from a known rule, for tests of `eft-eval pairwise` and its numbers.

For each prompt it finds responses A and B (between the markers of the built-in `preference`
judge) and says A with probability

    P(A) = sigmoid(strength(A) - strength(B) + first_position_bias + length_weight * (len(A) - len(B)))

else B (or a tie, when the draw falls within `tie_band` of the threshold). The draw is a hash of
the request, so the same request always gets the same answer: a live run, a batch run and a
re-run agree. Its reasoning names both responses before the verdict, as real judges do.

    judge = PairwiseJudge(strength=lambda text: 1.0 if "good" in text else 0.0, first_position_bias=0.5)
    with LoopbackServer(judge) as server: ...      # or BatchAPIFake(judge.answer)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

from eft_eval.testing._loopback import Reply


def _words(text: str) -> float:
    return float(len(text.split()))


class PairwiseJudge:
    """A loopback script (`LoopbackServer(judge)`) and a Batch API fake answer (`judge.answer`)."""

    def __init__(self, strength: Callable[[str], float], first_position_bias: float = 0.0,
                 length_weight: float = 0.0, length: Callable[[str], float] = _words, tie_band: float = 0.0,
                 seed: int = 0, markers: tuple[str, str, str, str] = (
                     "[RESPONSE A]\n", "\n[END OF RESPONSE A]", "[RESPONSE B]\n", "\n[END OF RESPONSE B]")) -> None:
        self.strength, self.first_position_bias, self.length_weight = strength, first_position_bias, length_weight
        self.length, self.tie_band, self.seed, self.markers = length, tie_band, seed, markers

    def probability_a(self, response_a: str, response_b: str) -> float:
        """The probability this judge says A for one order of one pair."""
        logit = (self.strength(response_a) - self.strength(response_b) + self.first_position_bias
                 + self.length_weight * (self.length(response_a) - self.length(response_b)))
        return 1.0 / (1.0 + math.exp(-logit))

    def responses(self, prompt: str) -> tuple[str, str]:
        start_a, end_a, start_b, end_b = self.markers
        a = prompt.split(start_a, 1)[1].split(end_a, 1)[0]
        b = prompt.split(start_b, 1)[1].split(end_b, 1)[0]
        return a, b

    def answer(self, body: dict[str, Any]) -> str:
        """The answer text to one chat-completions request body."""
        prompt = next(str(m.get("content")) for m in body["messages"] if m.get("role") == "user")
        a, b = self.responses(prompt)
        digest = hashlib.sha256(f"{self.seed}\0{prompt}".encode()).hexdigest()
        draw = int(digest[:13], 16) / 16**13
        p = self.probability_a(a, b)
        verdict = "tie" if abs(draw - p) < self.tie_band / 2 else ("A" if draw < p else "B")
        return (f"Reason: Response A has {len(a.split())} words and Response B has {len(b.split())}. "
                "A reads well at first, but B must be weighed too; between A and B the choice is close.\n"
                f"Verdict: {verdict}")

    def __call__(self, body: dict[str, Any]) -> Reply:
        return Reply(self.answer(body))
