"""Judge plugins: one YAML file per judge, loaded into a typed, validated `JudgeSpec`.

Built-in judges live in the repository's `judges/` folder; users add folders with `--include-path`.
Every problem with a file is an `EFTEvalError` naming the file and the field, because a researcher
editing a prompt should not have to read a traceback to find a typo.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import read_text
from eft_eval.judging._pairwise_spec import (
    DEFAULT_ORDER_RULE,
    DEFAULT_VERDICT_FORMAT,
    KINDS,
    PAIRWISE_FIELDS,
    build_order_rule,
    build_verdict_format,
    build_verdicts,
    check_pairwise_template,
)
from eft_eval.judging._spec_fields import (
    build_aggregation,
    check_abstain_tokens,
    check_sampling,
    check_templates,
    score_bound,
    yaml_typed,
)
from eft_eval.plugins import builtin_dir, plugin_dirs, plugin_file_kind, read_plugin_yaml, unrecognized_note, yaml_files
from eft_eval.runfolder import JUDGE_ALIASES

ScoreKind = Literal["integer", "number"]
Message = dict[str, str]

_REQUIRED = ("name", "description", "prompt", "score", "higher_is_better", "judge_model")
# A pairwise judge's score is the outcome for response A (0 to 1, higher is better): not declared.
_PAIRWISE_REQUIRED = ("name", "description", "prompt", "judge_model")
_OPTIONAL: dict[str, Any] = {
    "kind": "pointwise",
    "prompt_with_query": None,
    "system_prompt": None,
    "reason_label": "Reason",
    "score_label": "Score",
    "abstain_tokens": [],
    "aggregation": "mean",
    "sampling": {"temperature": 0},
    "parser": None,
}
_PAIRWISE_OPTIONAL: dict[str, Any] = {key: None for key in PAIRWISE_FIELDS}
_NOT_PAIRWISE = ("prompt_with_query",)  # a pairwise prompt always shows the query
_SCORE_KEYS = {"kind", "min", "max"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PLACEHOLDER = re.compile(r"\{(query|response|response_a|response_b)\}")

# Former names of built-in judges still load the renamed judge, with a one-line notice
# (`harmlessness` scored the likelihood of harm, lower is better: its name said the opposite).

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreSpec:
    """What a valid score looks like."""

    kind: ScoreKind
    """"integer" (e.g. a count of errors: 2.0 is fine, 2.5 is not) or "number"."""
    min: float | None
    """Smallest valid score, inclusive; None for unbounded."""
    max: float | None
    """Largest valid score, inclusive; None for unbounded (e.g. a count)."""


@dataclass(frozen=True)
class JudgeSpec:
    """One judge: how to ask for a score and how to read the answer."""

    name: str
    description: str
    prompt: str
    """User message template; `{response}` (required) and `{query}` are filled in, nothing else."""
    score: ScoreSpec
    higher_is_better: bool
    """Direction of the score: helpfulness up, harm and factual-error counts down."""
    judge_model: str
    """Default judge model; `JudgeConfig.judge_model` overrides it."""
    prompt_with_query: str | None = None
    """Alternative template that also shows the query, used when `JudgeConfig.show_query` is set."""
    system_prompt: str | None = None
    reason_label: str = "Reason"
    score_label: str = "Score"
    """The label introducing the score on the answer's last `Score:` line."""
    abstain_tokens: tuple[str, ...] = ()
    """Answers like `Score: None` are abstentions (not failures, never a 0)."""
    aggregation: str = "mean"
    """How scores are reduced to one number (`eft_eval.stats.get_aggregation`): the summaries'
    `aggregate`, and the K judgments of one response. YAML: `mean` or `{name: NAME, PARAM: VALUE}`."""
    aggregation_params: Mapping[str, Any] = field(default_factory=dict)
    """Parameters of the aggregation, e.g. `{"threshold": 1}` for `proportion_at_least`."""
    sampling: Mapping[str, Any] = field(default_factory=lambda: {"temperature": 0})
    """Extra chat-completion parameters (temperature 0 for reproducible judgments)."""
    parser: str | None = None
    """Optional `module:function` replacing the built-in parser; see `parse_answer`."""
    source: Path | None = field(default=None, compare=False)
    """The YAML file the judge came from (for error messages)."""
    kind: str = "pointwise"
    """`pointwise` (a score per response) or `pairwise` (a verdict between `{response_a}` and `{response_b}`,
    whose `score` is the outcome for response A: see `verdicts`)."""
    verdicts: Mapping[str, float] = field(default_factory=dict)
    """Pairwise: each verdict the judge may give -> the outcome for response A (1 wins, 0.5 tie, 0 loses)."""
    verdict_format: str = DEFAULT_VERDICT_FORMAT
    """Pairwise: the text of the final verdict, `{verdict}` standing for one of `verdicts`; the last match wins."""
    order_rule: str = DEFAULT_ORDER_RULE
    """Pairwise: how the verdicts of the two orders combine when they disagree (`stats.combine_orders`)."""

    @property
    def pairwise(self) -> bool:
        return self.kind == "pairwise"

    @property
    def direction(self) -> str:
        """The score's direction in words, for tables and axes."""
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def label(self) -> str:
        """Name and direction, e.g. `harm (lower is better)`: what an axis or a column is called."""
        return f"{self.name} ({self.direction})"

    def template(self, show_query: bool = False) -> str:
        return self.prompt_with_query if show_query and self.prompt_with_query else self.prompt

    def render_messages(self, query: str, response: str, show_query: bool = False,
                        response_b: str | None = None) -> list[Message]:
        """The chat messages asking this judge to score one response (pairwise: `response` is A, `response_b` B)."""
        # One pass over the template: a query that contains the text `{response}` stays as written
        # (replacing one placeholder after another pasted the response into it). Not str.format:
        # prompts may legitimately contain other braces.
        if self.pairwise and response_b is None:
            raise EFTEvalError(f"judge {self.name!r} compares two responses (kind: pairwise): use it with "
                               "`eft-eval pairwise`, not to score single responses")
        values = {"query": query, "response": response, "response_a": response, "response_b": response_b or ""}
        text = _PLACEHOLDER.sub(lambda found: values[found.group(1)], self.template(show_query))
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*messages, {"role": "user", "content": text}]

    def fingerprint(self) -> str:
        """A hash of everything that changes the judge's requests or how answers are read.

        Part of the cache key: editing a prompt, range or parser makes old cached answers unused.
        """
        content = asdict(self)
        content.pop("source")
        # Aggregation parameters change no request and no parse; left out so that judge answers
        # cached before they existed stay valid (the aggregation's name was always in).
        content.pop("aggregation_params")
        # How two orders combine changes no request; the pairwise fields of a pointwise judge are
        # left out so that its answers cached before they existed stay valid.
        content.pop("order_rule")
        if not self.pairwise:
            for key in ("kind", "verdicts", "verdict_format"):
                content.pop(key)
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def custom_parser(self) -> Callable[[str, JudgeSpec], Any] | None:
        return _import_parser(self.parser, self.source) if self.parser else None


def load_judges(names: list[str] | None, include_paths: list[str] | None = None,
                kind: str = "pointwise") -> list[JudgeSpec]:
    """The judges called `names` (all available ones of `kind`, sorted by name, when None).

    Built-in judges come from `judges/`, then each folder of `include_paths`. A name defined twice
    is an error naming both files; an unknown name is an error listing the available ones, and a
    judge of the other kind (a pairwise judge where responses are scored alone) is one naming it.
    """
    everything = discover_judges(include_paths)
    available = {name: spec for name, spec in everything.items() if spec.kind == kind}
    if names is not None:
        other = next((name for name in names if name not in available and name in everything), None)
        if other is not None:
            raise EFTEvalError(
                f"judge {other!r} is a {everything[other].kind} judge ({everything[other].source}): "
                + ("use it with `eft-eval pairwise`" if everything[other].pairwise
                   else "`eft-eval pairwise` needs judges of kind: pairwise")
                + f"; {kind} judges here: {', '.join(sorted(available)) or 'none'}")
    if names is None:
        return [available[name] for name in sorted(available)]
    names = [canonical_judge_name(name, available) for name in names]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise EFTEvalError(
            f"unknown judge {', '.join(map(repr, unknown))}; available judges: {', '.join(sorted(available))}"
            " (add your own folder of judge YAML files with --include-path)" + unrecognized_note(include_paths or [])
        )
    return [available[name] for name in dict.fromkeys(names)]


def canonical_judge_name(name: str, available: Mapping[str, JudgeSpec] | None = None) -> str:
    """`name`, or the judge it was renamed to (see `JUDGE_ALIASES`), saying so once in one line.

    A judge a user defines under the old name (in an include path) keeps it: no alias applies.
    """
    target = JUDGE_ALIASES.get(name)
    if target is None or (available is not None and (name in available or target not in available)):
        return name
    _notice_alias(name, target)
    return target


def _notice_alias(name: str, target: str) -> None:
    logger.warning("judge %r is now called %r (same prompt and scores; lower is better): loading %r",
                   name, target, target)


def discover_judges(include_paths: list[str] | None = None) -> dict[str, JudgeSpec]:
    """Every judge in the plugin folders, by name.

    Every file of the built-in `judges/` folder is a judge. An include folder may hold tasks and
    studies too: there only the files that read as judges (`is_judge_file`) are loaded, and each of
    them is validated in full (a judge with a bad field is an error naming it).
    """
    judges: dict[str, JudgeSpec] = {}
    builtin = builtin_dir("judges")
    for folder in plugin_dirs("judges", list(include_paths or [])):
        if not folder.is_dir():
            raise EFTEvalError(f"judge include path {str(folder)!r} is not a folder")
        for path in yaml_files(folder):
            if folder != builtin and not is_judge_file(path):
                continue
            spec = load_judge_file(path)
            if spec.name in judges:
                raise EFTEvalError(
                    f"judge {spec.name!r} is defined twice: in {judges[spec.name].source} and in {path}"
                )
            judges[spec.name] = spec
    return judges


def is_judge_file(path: str | Path) -> bool:
    """Whether a YAML file is meant as a judge (a mapping with `prompt` and `score`), unvalidated.

    `--include-path` folders hold task, judge and study YAMLs side by side; this tells them apart
    (`plugins.plugin_file_kind`). A file that is not UTF-8 is an error naming it; one that is not
    valid YAML is not a judge (an "unknown judge" error lists it, `plugins.unrecognized_note`).
    """
    try:
        data = read_plugin_yaml(path)
    except EFTEvalError:
        if not Path(path).is_file():
            raise
        read_text(Path(path), "YAML file")  # not UTF-8: that error; otherwise it is only bad YAML
        return False
    return plugin_file_kind(data) == "judge"


def load_judge_file(path: str | Path) -> JudgeSpec:
    """Read and validate one judge YAML file."""
    path = Path(path)
    text = read_text(path, "judge YAML file")  # missing, a folder, not UTF-8: one line naming it
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise EFTEvalError(f"{path}: cannot read judge YAML: {error}".replace("\n", " ")) from error
    if not isinstance(data, dict):
        raise EFTEvalError(f"{path}: a judge file must be a mapping of fields, got {type(data).__name__}")
    return _build_spec(data, path)


def _build_spec(data: dict[str, Any], path: Path) -> JudgeSpec:
    def bad(field_name: str, why: str) -> EFTEvalError:
        return EFTEvalError(f"{path}: field {field_name!r} {why}")

    kind = data.get("kind", "pointwise")
    if kind not in KINDS:
        raise bad("kind", f"must be one of {', '.join(KINDS)}, got {kind!r:.40}")
    if kind == "pairwise":
        return _build_pairwise(data, path, bad)
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        why = " (of pairwise judges only)" if unknown[0] in PAIRWISE_FIELDS else ""
        raise bad(unknown[0], f"is not a judge field{why} (known fields: {', '.join([*_REQUIRED, *_OPTIONAL])})")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise bad(missing[0], "is missing")
    values = {**_OPTIONAL, **data}

    for key in ("name", "description", "prompt", "judge_model", "reason_label", "score_label"):
        if not isinstance(values[key], str) or (key != "description" and not values[key].strip()):
            raise bad(key, "must be a non-empty string" + yaml_typed(values[key]))
    for key in ("prompt_with_query", "system_prompt", "parser"):
        if values[key] is not None and not isinstance(values[key], str):
            raise bad(key, "must be a string" + yaml_typed(values[key]))
    if not _NAME_RE.match(values["name"]):
        raise bad("name", "may only contain letters, digits, '_', '-' and '.'")
    check_templates(values, bad)
    if not isinstance(values["higher_is_better"], bool):
        raise bad("higher_is_better", "must be true or false")
    aggregation, aggregation_params = build_aggregation(values["aggregation"], bad)
    tokens = values["abstain_tokens"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t.strip() for t in tokens):
        raise bad("abstain_tokens", "must be a list of strings")
    check_abstain_tokens(tokens, bad)
    if not isinstance(values["sampling"], dict):
        raise bad("sampling", "must be a mapping of chat-completion parameters")
    check_sampling(values["sampling"], bad)
    if values["parser"] is not None:
        _import_parser(values["parser"], path)

    return JudgeSpec(
        name=values["name"],
        description=values["description"],
        prompt=values["prompt"],
        prompt_with_query=values["prompt_with_query"],
        system_prompt=values["system_prompt"],
        score=_build_score(values["score"], bad),
        higher_is_better=values["higher_is_better"],
        judge_model=values["judge_model"],
        reason_label=values["reason_label"],
        score_label=values["score_label"],
        abstain_tokens=tuple(tokens),
        aggregation=aggregation,
        aggregation_params=aggregation_params,
        sampling=dict(values["sampling"]),
        parser=values["parser"],
        source=path,
    )


def _build_pairwise(data: dict[str, Any], path: Path, bad: Callable[[str, str], EFTEvalError]) -> JudgeSpec:
    """A `kind: pairwise` judge: the shared fields as for any judge, then its verdicts."""
    known = [key for key in [*_PAIRWISE_REQUIRED, *_OPTIONAL, *_PAIRWISE_OPTIONAL] if key not in _NOT_PAIRWISE]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise bad(unknown[0], f"is not a field of a pairwise judge (known fields: {', '.join(known)})")
    missing = [key for key in _PAIRWISE_REQUIRED if key not in data]
    if missing:
        raise bad(missing[0], "is missing")
    check_pairwise_template(data["prompt"], bad)
    # Everything else is checked as for a pointwise judge, whose score is the outcome for A.
    placeholder = {"prompt": str(data["prompt"]).replace("{response_a}", "{response}").replace("{response_b}", ""),
                   "score": {"kind": "number", "min": 0, "max": 1}, "higher_is_better": True}
    fields = {key: value for key, value in data.items() if key not in _PAIRWISE_OPTIONAL and key != "kind"}
    spec = _build_spec({**fields, **placeholder}, path)
    verdicts = build_verdicts(data.get("verdicts"), bad)
    clash = next((t for t in spec.abstain_tokens if t.lower() in {label.lower() for label in verdicts}), None)
    if clash is not None:
        raise bad("abstain_tokens", f"{clash!r} is also a verdict")
    return dataclasses.replace(
        spec, prompt=data["prompt"], kind="pairwise", verdicts=verdicts,
        verdict_format=build_verdict_format(data.get("verdict_format"), bad),
        order_rule=build_order_rule(data.get("order_rule"), bad))


def _build_score(raw: Any, bad: Callable[[str, str], EFTEvalError]) -> ScoreSpec:
    if not isinstance(raw, dict):
        raise bad("score", "must be a mapping with kind, min and max")
    unknown = sorted(set(raw) - _SCORE_KEYS)
    if unknown:
        raise bad(f"score.{unknown[0]}", "is not a score field (known: kind, min, max)")
    if "kind" not in raw:
        raise bad("score.kind", "is missing")
    if raw["kind"] not in ("integer", "number"):
        raise bad("score.kind", "must be 'integer' or 'number'")
    bounds = {key: score_bound(raw.get(key), f"score.{key}", bad) for key in ("min", "max")}
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        raise bad("score.max", "must not be below score.min")
    return ScoreSpec(kind=raw["kind"], min=low, max=high)


@functools.cache  # parse_answer runs per answer; import each plugin once
def _import_parser(reference: str, source: Path | None) -> Callable[[str, JudgeSpec], Any]:
    """Resolve `module:function`; a `module.py` next to the YAML file wins over installed modules."""
    where = f"{source}: field 'parser'" if source else "parser"
    module_name, _, function_name = reference.partition(":")
    if not module_name or not function_name:
        raise EFTEvalError(f"{where} must look like 'module:function', got {reference!r}")
    local = source.parent / f"{module_name}.py" if source else None
    try:
        if local is not None and local.is_file():
            import_spec = importlib.util.spec_from_file_location(f"eft_eval_judge_{module_name}", local)
            assert import_spec is not None and import_spec.loader is not None
            module = importlib.util.module_from_spec(import_spec)
            import_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except Exception as error:  # any import failure is the user's plugin's, say which
        raise EFTEvalError(f"{where}: cannot import {module_name!r}: {error}") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise EFTEvalError(f"{where}: {module_name!r} has no function {function_name!r}")
    return function
