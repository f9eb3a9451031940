"""What a judged sample must hold before an analysis counts it (docs/formats.md, samples.jsonl).

Python's json module reads more than the writers write: `NaN` and `Infinity` literals, a score
as the text "7" or as `true`, a doc_id as 1.0. Read leniently, each gives a wrong number with
exit 0 (a NaN mean written as null, `true` counted as 1, `1.0` never paired with `1`), so each is
refused in one line naming the file, the sample and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eft_eval.analysis._run_spec import short_repr
from eft_eval.errors import EFTEvalError


def check_rows(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Refuse samples whose doc_id or judgments are not of the documented shape."""
    for index, row in enumerate(rows, start=1):
        doc_id = row.get("doc_id")
        # A whole number or a text: what `run` and `judge` write; anything else would be
        # matched across runs by its Python spelling (`1.0` is not `1`, `True` is not `1`).
        if doc_id is not None and (isinstance(doc_id, bool) or not isinstance(doc_id, (int, str))):
            raise EFTEvalError(f"{path}: sample {index}: doc_id {doc_id!r} is not a whole number or a text "
                               "(prompts are matched across runs by it): write it as an integer")
        judgments = row.get("judgments")
        if judgments is not None and not isinstance(judgments, Mapping):
            raise EFTEvalError(f"{path}: sample {index}: judgments is {type(judgments).__name__} "
                               f"{short_repr(judgments)}, "
                               "not an object of judge name -> judgment")
        for name, judgment in (judgments or {}).items():
            if judgment is not None and not isinstance(judgment, Mapping):
                raise EFTEvalError(f"{path}: sample {index}: the judgment of {name!r} is "
                                   f"{short_repr(judgment)}, not an "
                                   "object with status and score")


def scored_value(judgment: Mapping[str, Any], where: str) -> float:
    """A scored judgment's score: a finite JSON number, else one line naming `where` and the value."""
    score = judgment.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise EFTEvalError(f"{where}: status is scored but the score {short_repr(score)} is not a number "
                           "(a number, never text or true/false): re-judge it or fix the file")
    if not math.isfinite(score):
        raise EFTEvalError(f"{where}: status is scored but the score is {score!r} (not a finite number): "
                           "re-judge it or fix the file")
    return float(score)

