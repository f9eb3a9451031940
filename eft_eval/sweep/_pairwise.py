"""A study's `pairwise:` key: which grid points a sweep judges against which, pair by pair.

    pairwise:
      judges: [preference]            # pairwise judges (kind: pairwise)
      against: alpha=0                # a grid point's label: every other point against it
      # or: against: {config: small-ft}   grid values: in each group of points sharing the other
      #                                   grid values (each task), the matching point is the reference
      runs: {config: [up]}            # optional: only these points are compared (labels, or grid values)
      round_robin: true               # optional: also every two compared points against each other

After its runs and its analysis, `eft-eval sweep` calls `analysis.pairwise` once per group into
`pairwise/` (one group) or `pairwise/<group>/` (`SweepFolder.pairwise_folder`); the judge cache
of a pairwise folder makes a re-run ask nothing again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eft_eval.errors import EFTEvalError
from eft_eval.parsing import parse_bool

PAIRWISE_KEYS = ("judges", "against", "runs", "round_robin")


class LabelledPoint(Protocol):
    """What the comparisons need of a grid point (`_study.GridPoint`): its label and value labels."""

    @property
    def label(self) -> str: ...

    @property
    def names(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Comparison:
    """One pairwise folder of a sweep: the reference point and the points judged against it."""

    group: str
    """'' for a single comparison, else the other grid values (`task=hh`): the folder's name."""
    reference: str
    """The reference point's label."""
    runs: list[str]
    """The labels of the points judged against it."""


@dataclass(frozen=True)
class StudyPairwise:
    judges: list[str]
    comparisons: list[Comparison]
    round_robin: bool = False
    """Also judge every two runs of a comparison against each other (`analysis.pairwise(round_robin=)`)."""

    def to_dict(self) -> dict[str, Any]:
        return {"judges": self.judges,
                "comparisons": [{"group": c.group, "against": c.reference, "runs": c.runs} for c in self.comparisons],
                **({"round_robin": True} if self.round_robin else {})}


def parse_pairwise(raw: Any, points: Sequence[LabelledPoint], grid: dict[str, list[str]],
                   bad: Callable[[str, str], EFTEvalError]) -> StudyPairwise | None:
    """The study's `pairwise:` checked against its grid (one line naming the key at fault)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad("pairwise", f"must be a mapping with judges and against, got {type(raw).__name__}")
    unknown = [key for key in raw if key not in PAIRWISE_KEYS]
    if unknown:
        raise bad(f"pairwise.{unknown[0]}", f"is not a pairwise key (known: {', '.join(PAIRWISE_KEYS)})")
    judges = raw.get("judges")
    if isinstance(judges, str):
        judges = [judges]
    if not isinstance(judges, list) or not judges or not all(isinstance(j, str) and j.strip() for j in judges):
        raise bad("pairwise.judges", f"must list pairwise judge names (e.g. [preference]), got {judges!r}")
    try:  # `bool("false")` is True: parsed strictly
        round_robin = parse_bool(raw.get("round_robin", False), "round_robin", "pairwise")
    except EFTEvalError:
        raise bad("pairwise.round_robin", f"must be true or false, got {raw.get('round_robin')!r}") from None
    labels = [point.label for point in points]
    against = raw.get("against")
    if isinstance(against, str):
        if against not in labels:
            raise bad("pairwise.against", f"{against!r} is not a grid point label (labels: {_shown(labels)})")
        reference = {point.label: point for point in points}[against]
        groups: dict[str, tuple[LabelledPoint, list[LabelledPoint]]] = {
            "": (reference, [p for p in points if p is not reference])}
    elif isinstance(against, dict) and against:
        wanted = {str(var): str(value) for var, value in against.items()}
        _check_values(wanted, grid, "pairwise.against", bad)
        others = [var for var in grid if var not in wanted]
        groups = {}
        for point in points:
            name = "_".join(f"{var}={point.names[var]}" for var in others)
            is_reference = all(point.names[var] == value for var, value in wanted.items())
            if is_reference:
                groups[name] = (point, groups.get(name, (point, []))[1])
            else:
                groups.setdefault(name, (point, []))[1].append(point)
    else:
        raise bad("pairwise.against", "must be a grid point label (e.g. alpha=0) or grid values (e.g. "
                  f"{{config: small-ft}}), got {against!r}")
    keep = _run_filter(raw.get("runs"), labels, grid, bad)
    comparisons = [Comparison(group, reference.label, [p.label for p in members if keep(p)])
                   for group, (reference, members) in groups.items()]
    comparisons = [c for c in comparisons if c.runs]
    if not comparisons:
        raise bad("pairwise.runs", "leaves no grid point to compare with the reference")
    return StudyPairwise(judges=[j.strip() for j in judges], comparisons=comparisons, round_robin=round_robin)


def _check_values(values: dict[str, Any], grid: dict[str, list[str]], key: str,
                  bad: Callable[[str, str], EFTEvalError]) -> None:
    for var, value in values.items():
        if var not in grid:
            raise bad(f"{key}.{var}", f"is not a grid variable (grid: {', '.join(grid)})")
        names = [str(v) for v in (value if isinstance(value, list) else [value])]
        for name in names:
            if name not in grid[var]:
                raise bad(f"{key}.{var}", f"{name!r} is not one of its values ({_shown(grid[var])})")


def _run_filter(raw: Any, labels: Sequence[str], grid: dict[str, list[str]],
                bad: Callable[[str, str], EFTEvalError]) -> Callable[[LabelledPoint], bool]:
    if raw is None:
        return lambda point: True
    if isinstance(raw, list):
        missing = [str(label) for label in raw if str(label) not in labels]
        if missing:
            raise bad("pairwise.runs", f"{missing[0]!r} is not a grid point label (labels: {_shown(labels)})")
        chosen = {str(label) for label in raw}
        return lambda point: point.label in chosen
    if isinstance(raw, dict) and raw:
        _check_values(raw, grid, "pairwise.runs", bad)
        allowed = {str(var): {str(v) for v in (value if isinstance(value, list) else [value])}
                   for var, value in raw.items()}
        return lambda point: all(point.names[var] in names for var, names in allowed.items())
    raise bad("pairwise.runs", f"must list grid point labels or map grid variables to values, got {raw!r}")


def _shown(names: Sequence[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most else "")


__all__ = ["PAIRWISE_KEYS", "Comparison", "StudyPairwise", "parse_pairwise"]
