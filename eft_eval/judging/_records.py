"""Reading responses to judge: `{query, response}` JSONL or lm-eval `--log_samples` output.

Both become rows of samples.jsonl (docs/formats.md): doc_id, task, model, query, response,
judgments, plus any extra keys of the input, which are kept.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import iter_jsonl

# Fields of an lm-eval document that hold the user's prompt, most specific first.
QUERY_FIELDS = ("query", "prompt", "question", "instruction")
# lm-eval names its files samples_<task>_<date id>.jsonl, in a folder named after the model.
_LM_EVAL_FILE = re.compile(r"^samples_(?P<task>.+)_\d{4}-\d{2}-\d{2}T[\d\-.]+$")


def read_records(path: str | Path, model_label: str | None = None,
                 query_field: str | None = None) -> list[dict[str, Any]]:
    """Rows to judge from one JSONL file, in file order."""
    path = Path(path)
    rows = []
    for number, record in iter_jsonl(path):
        where = f"{path}:{number}"
        if "doc" in record and ("filtered_resps" in record or "resps" in record):
            rows.append(_from_lm_eval(record, path, where, model_label, query_field))
        elif "query" in record and "response" in record:
            rows.append(_from_plain(record, len(rows), where, model_label))
        else:
            raise EFTEvalError(
                f"{where}: a record needs 'query' and 'response' (or be lm-eval --log_samples output "
                "with 'doc', 'arguments' and 'filtered_resps')"
            )
    return rows


def _from_plain(record: dict[str, Any], index: int, where: str, model_label: str | None) -> dict[str, Any]:
    for key in ("query", "response"):
        if not isinstance(record[key], str):
            raise EFTEvalError(f"{where}: field {key!r} must be a string")
    judgments = record.get("judgments") or {}
    if not isinstance(judgments, dict):
        raise EFTEvalError(f"{where}: field 'judgments' must be an object")
    row = {
        "doc_id": record.get("doc_id", index),
        "task": record.get("task", "judge"),
        "model": model_label or record.get("model") or "unknown",
        "query": record["query"],
        "response": record["response"],
        "judgments": dict(judgments),
    }
    return {**row, **{key: value for key, value in record.items() if key not in row}}  # extra keys kept


def _from_lm_eval(record: dict[str, Any], path: Path, where: str, model_label: str | None,
                  query_field: str | None) -> dict[str, Any]:
    match = _LM_EVAL_FILE.match(path.stem)
    return {
        "doc_id": record.get("doc_id"),
        "task": match.group("task") if match else record.get("task", path.stem),
        # lm-eval writes samples into a folder named after the (sanitized) model.
        "model": model_label or path.resolve().parent.name,
        "query": _lm_eval_query(record, where, query_field),
        "response": _lm_eval_response(record, where),
        "doc": record["doc"],
        "judgments": {},
    }


def _lm_eval_query(record: dict[str, Any], where: str, query_field: str | None) -> str:
    """The user's prompt: a document field when there is one, else the prompt lm-eval sent."""
    doc = record["doc"] if isinstance(record["doc"], dict) else {}
    if query_field is not None:
        if not isinstance(doc.get(query_field), str):
            raise EFTEvalError(f"{where}: the lm-eval doc has no string field {query_field!r} (--query-field)")
        return str(doc[query_field])
    for key in QUERY_FIELDS:
        if isinstance(doc.get(key), str):
            return str(doc[key])
    arguments = record.get("arguments")
    # Saved form: {"gen_args_0": {"arg_0": prompt, "arg_1": generation kwargs}}; in-memory: [[prompt, kwargs]].
    if isinstance(arguments, dict) and arguments:
        first = next(iter(arguments.values()))
        prompt = first.get("arg_0") if isinstance(first, dict) else None
    elif isinstance(arguments, list) and arguments and isinstance(arguments[0], (list, tuple)):
        prompt = arguments[0][0] if arguments[0] else None
    else:
        prompt = None
    if not isinstance(prompt, str):
        raise EFTEvalError(f"{where}: cannot find the prompt (no doc field {'/'.join(QUERY_FIELDS)} or arguments)")
    return prompt


def _lm_eval_response(record: dict[str, Any], where: str) -> str:
    """The generated text: filtered_resps (after lm-eval's filters), else resps."""
    value: Any = record.get("filtered_resps") or record.get("resps")
    while isinstance(value, list) and value:
        value = value[0]  # one request per doc for generate_until; [[text]] or [text]
    if not isinstance(value, str):
        raise EFTEvalError(f"{where}: filtered_resps/resps hold no generated text")
    return value
