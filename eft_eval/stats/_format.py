"""How numbers and tables are printed: one family, so a number reads the same in every table.

`format_number` prints one number, `format_mean_se` a mean and its standard error, `format_table` plain
aligned text. Callers choose the marker for a missing number (`-` in tables, `n/a` in sentences) and
fixed decimals or significant digits (the report's tables mix scales); the rules stay the same.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Collection, Sequence
from typing import Any


def format_number(x: Any, digits: int = 3, *, significant: bool = False, missing: str = "n/a") -> str:
    """`x` with `digits` decimals (or significant digits); `missing` for None/NaN; never "-0.000".

    Anything that is not a number (a label, a bool) is printed as it is.
    """
    if x is None or (_is_number(x) and math.isnan(x)):
        return missing
    if not _is_number(x):
        return str(x)
    text = f"{x:.{digits}{'g' if significant else 'f'}}"
    # A negative number rounded to zero reads as a sign error.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def format_mean_se(mean: Any, stderr: Any, digits: int = 3, *, significant: bool = False,
                   stderr_digits: int | None = None, missing: str = "-") -> str:
    """`0.412 ± 0.031` ("±" is one standard error); the mean alone when the error is missing."""
    text = format_number(mean, digits, significant=significant, missing=missing)
    if not _is_number(mean) or math.isnan(mean) or not _is_number(stderr) or not math.isfinite(stderr):
        return text
    se_digits = digits if stderr_digits is None else stderr_digits
    return f"{text} ± {format_number(stderr, se_digits, significant=significant, missing=missing)}"


def _is_number(x: Any) -> bool:
    # numbers.Real: numpy scalars too; a bool is a flag, not a number.
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Collection[int] = (),
                 missing: str = "-") -> str:
    """Plain aligned text, one line per row, two spaces between columns; `right`: right-aligned columns."""
    cells = [[str(c) for c in header]] + [[missing if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(line, widths))).rstrip() for line in cells)


def short_label(text: str, limit: int = 40) -> str:
    """`text` when it has at most `limit` characters, else its start, "…" and a digest of the whole
    (`ft=meta-llama-Llama-2-7b-chat…3fa2c1`): a long spec or path as a label that fits a table
    cell or a figure's tick, two long labels with one start still told apart."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
    return f"{text[:max(1, limit - 7)]}…{digest}"


__all__ = ["format_mean_se", "format_number", "format_table", "short_label"]
