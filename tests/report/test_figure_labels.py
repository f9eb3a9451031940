"""Labels of points at the same place are stacked, not printed over each other: the report's
frontier figure and the frontier analysis's figure, measured on the drawn figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eft_eval.analysis import _render
from eft_eval.figures import label_slots
from eft_eval.report import _figures


def points() -> list[dict[str, Any]]:
    """Three alphas scored alike (one place), one close to them and one elsewhere, over two bases."""
    same = {"x_mean": 50.0, "y_mean": 20.0}
    rows = [(0.0, same, "7b"), (0.5, same, "7b"), (1.0, same, "7b"), (0.5, {"x_mean": 50.5, "y_mean": 20.2}, "13b"),
            (0.0, {"x_mean": 80.0, "y_mean": 60.0}, "13b")]
    return [{"label": f"base={base},alpha={alpha}", "alpha": alpha, "base": base, **place, "x_stderr": 1.0,
             "y_stderr": 1.0, "pareto": index == 4, "run": f"r{index}"}
            for index, (alpha, place, base) in enumerate(rows)]


def assert_apart(figure: Any, expected: int) -> None:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [(text.get_text(), text.get_window_extent(renderer))
             for axes in figure.axes for text in axes.texts if text.get_text()]
    assert len(boxes) == expected
    for i, (first, box) in enumerate(boxes):
        for second, other in boxes[i + 1:]:
            assert not box.overlaps(other), f"{first!r} is printed over {second!r}"


def test_the_reports_frontier_stacks_the_labels_of_points_at_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[Any] = []
    monkeypatch.setattr(_figures, "to_svg", lambda fig, name: drawn.append(fig) or "")
    _figures.frontier({"points": points()}, "helpfulness", "harm", [0, 1, 2, 3, 4])
    assert_apart(drawn[0], expected=5)


def test_the_frontier_analysis_figure_stacks_the_labels_of_points_at_one_place(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drawn: list[Any] = []
    monkeypatch.setattr(_render, "save_figure", lambda figure, folder, stem: drawn.append(figure) or [])
    _render.frontier_figure({"points": points(), "x_judge": "helpfulness", "y_judge": "harm"}, tmp_path)
    assert_apart(drawn[0], expected=5)


def test_label_slots_give_each_near_label_its_own_line() -> None:
    assert label_slots([(0, 0), (0, 0), (10, 10), (0, 0), (0.1, 0.1)]) == [0, 1, 0, 2, 3]
    assert label_slots([(0, 0), (10, 10)]) == [0, 0]
    assert label_slots([(5, 5), (5, 5)]) == [0, 1] and label_slots([]) == []
