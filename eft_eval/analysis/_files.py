"""Writing an analysis: OUT/<name>.json, OUT/<name>.csv, figures as PNG and SVG, a printed table.

JSON has no NaN: every undefined number is written as null. The CSV holds the JSON's rows, one
column per key (nested values, such as an interval, as JSON text).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import write_json, write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def clean(value: Any) -> Any:
    """`value` with NaN and infinities as None, tuples as lists, Estimates as dicts (for JSON)."""
    if hasattr(value, "to_dict"):
        return clean(value.to_dict())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean(value.item())
    return value


def prepare_output(output_dir: str | Path) -> Path:
    folder = Path(output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EFTEvalError(f"cannot create the output folder {folder}: {error.strerror or error}") from error
    return folder


def write_analysis(output_dir: Path, name: str, data: Mapping[str, Any],
                   rows: Sequence[Mapping[str, Any]]) -> list[Path]:
    """OUT/<name>.json (all of `data`) and OUT/<name>.csv (`rows`); returns the paths."""
    folder = prepare_output(output_dir)
    json_path, csv_path = folder / f"{name}.json", folder / f"{name}.csv"
    write_json(json_path, clean(data))
    write_text_atomic(csv_path, to_csv(rows))
    return [json_path, csv_path]


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in clean(dict(row)).items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else ("" if value is None else value)


def save_figure(figure: Figure, output_dir: Path, stem: str) -> list[Path]:
    """The figure as OUT/<stem>.png and OUT/<stem>.svg; the figure is closed."""
    from eft_eval.figures import pyplot

    paths = [output_dir / f"{stem}.png", output_dir / f"{stem}.svg"]
    figure.tight_layout()
    # A fixed SVG hash salt and no date metadata: re-running an analysis gives the same bytes.
    figure.savefig(paths[0], dpi=150, metadata={"Software": None})
    plt = pyplot()
    with plt.rc_context({"svg.hashsalt": "eft-eval"}):
        figure.savefig(paths[1], metadata={"Date": None})
    plt.close(figure)
    return paths


def new_figure(width: float, height: float) -> Figure:
    from eft_eval.figures import pyplot

    return pyplot().figure(figsize=(width, height))


def axis_label(judge: str, higher_is_better: bool | None, what: str = "") -> str:
    """`harm (lower is better)`: every axis says which way is good."""
    direction = "" if higher_is_better is None else f" ({'higher' if higher_is_better else 'lower'} is better)"
    return f"{judge}{what}{direction}"


def to_dataframe(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A pandas DataFrame of an analysis's rows (`data["rows"]` or `data["points"]`); needs pandas."""
    try:
        import pandas as pd
    except ImportError as error:
        raise EFTEvalError("to_dataframe needs pandas (pip install pandas); the rows are plain dicts") from error
    return pd.DataFrame([clean(dict(row)) for row in rows])
