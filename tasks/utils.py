"""Data loading for the built-in judged tasks (`custom_dataset: !function utils.load_...`).

lm-eval calls a task's `custom_dataset` with the task's `metadata` and `dataset_kwargs` as keyword
arguments, so the selection settings live in the YAML's metadata (`num_docs`, `selection_seed`,
`max_words`) and anything given at run time overrides them: `eft-eval run --seed/--data-files`, or
plain lm-eval's `--metadata '{"data_files": "test.jsonl.gz", "selection_seed": 1}'`.

The selection has to happen here rather than in a `process_docs` hook: drawing "256 at random
with a seed" needs the seed, and `process_docs` only receives the documents.

The hub source is `dataset_kwargs: {hub_path, hub_config, data_dir}` (not lm-eval's `dataset_path`,
which `custom_dataset` does not receive; nor `name`/`path`, which lm-eval's CLI could also put into
the metadata from `model_args`, colliding).

Every loader returns `{"test": Dataset}` whose rows are `{"query": str, "source_index": int, ...}`,
in drawn order, so that lm-eval's `--limit N` takes a random sample of N as well.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eft_eval.errors import EFTEvalError

HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
ELI5_QUESTION_FIELDS = ("input", "title", "question")
"""Where an ELI5 record keeps its question: KILT's `input`, the original ELI5's `title`, or `question`."""
DEMO_FILE = Path(__file__).resolve().parent / "demo_prompts.jsonl"


def load_hh(
    hub_path: str = "Anthropic/hh-rlhf",
    data_dir: str | Sequence[str] | None = None,
    data_files: str | Sequence[str] | None = None,
    num_docs: int | None = 256,
    selection_seed: int = 0,
    **_: Any,
) -> dict[str, Any]:
    """Anthropic HH-RLHF test dialogues with a single Human turn; their first Human turn is the query."""
    sources = _read(hub_path, _as_list(data_dir), data_files, split="test")
    docs: list[dict[str, Any]] = []
    for where, records in sources:
        _require_field(records, "chosen", where, "an HH transcript '\\n\\nHuman: ...\\n\\nAssistant: ...'")
        for index, transcript in enumerate(records["chosen"]):
            query = single_turn_query(transcript)
            if query is not None:
                docs.append({"query": query, "source_index": index, "source": where})
    return _dataset(_draw(docs, num_docs, selection_seed))


def single_turn_query(transcript: Any) -> str | None:
    """The Human turn of a one-exchange transcript, or None for multi-turn or malformed ones."""
    if not isinstance(transcript, str) or transcript.count(HUMAN) != 1 or transcript.count(ASSISTANT) != 1:
        return None
    before, _, rest = transcript.partition(HUMAN)
    query, found, _ = rest.partition(ASSISTANT)
    if before.strip() or not found or not query.strip():
        return None
    return query.strip()


def load_eli5(
    hub_path: str = "facebook/kilt_tasks",
    hub_config: str | None = "eli5",
    data_files: str | Sequence[str] | None = None,
    num_docs: int | None = 256,
    selection_seed: int = 0,
    max_words: int = 30,
    **_: Any,
) -> dict[str, Any]:
    """ELI5 test questions of at most `max_words` words (whitespace-separated)."""
    sources = _read(hub_path, [None], data_files, split="test", name=hub_config)
    docs: list[dict[str, Any]] = []
    for where, records in sources:
        field = next((f for f in ELI5_QUESTION_FIELDS if f in records.column_names), None)
        if field is None:
            raise EFTEvalError(
                f"{where}: ELI5 records need a question field, one of {', '.join(map(repr, ELI5_QUESTION_FIELDS))}; "
                f"found fields: {', '.join(records.column_names) or 'none'}"
            )
        _require_field(records, field, where, "the question")
        for index, question in enumerate(records[field]):
            question = " ".join(str(question).split())
            if question and len(question.split()) <= int(max_words):
                docs.append({"query": question, "source_index": index, "source": where})
    return _dataset(_draw(docs, num_docs, selection_seed))


def load_demo(data_files: str | Sequence[str] | None = None, **_: Any) -> dict[str, Any]:
    """The demo prompts shipped beside this file, in file order (no draw: categories alternate)."""
    return load_prompts(data_files or str(DEMO_FILE))


def load_prompts(data_files: str | Sequence[str] | None = None, **_: Any) -> dict[str, Any]:
    """A user's own prompts: JSONL files with a string `query` per line, in file order.

    Every other field (`id`, `category`, anything) is kept: it reaches the samples as the row's
    `doc`, and the report can filter on it. Read line by line (not through `datasets`) so that a
    record without a `query` is named by file and line.
    """
    from eft_eval.fileio import iter_jsonl

    if not data_files:
        raise EFTEvalError("task prompts needs your prompts: --data-files my.jsonl (one JSON object per line, "
                           "each with a \"query\" string)")
    files = [str(f) for f in _as_list(data_files)]
    docs: list[dict[str, Any]] = []
    for name in files:
        if not Path(name).is_file():
            raise EFTEvalError(f"data file {name} does not exist")
        for index, (number, record) in enumerate(iter_jsonl(Path(name))):
            query = record.get("query")
            if not isinstance(query, str) or not query.strip():
                found = ", ".join(record) or "none"
                raise EFTEvalError(f"{name}:{number}: needs a \"query\" string (the prompt); found fields: {found}")
            docs.append({"source_index": index, "source": name, **record})
    return _dataset(_same_fields(docs))


def _same_fields(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record with every field (None where one has none): a table needs one set of columns."""
    fields = list(dict.fromkeys(key for doc in docs for key in doc))
    return [{key: doc.get(key) for key in fields} for doc in docs]


def _read(path: str, data_dirs: list[str | None], data_files: str | Sequence[str] | None, split: str,
          name: str | None = None) -> list[tuple[str, Any]]:
    """(label, Dataset) per source: the local files when given, else each hub `data_dir`."""
    import datasets

    jobs: list[tuple[str, dict[str, Any]]]
    if data_files:
        files = _as_list(data_files)
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise EFTEvalError(f"data file {missing[0]} does not exist")
        jobs = [(", ".join(files), {"path": "json", "data_files": {split: files}})]
    else:
        jobs = [(f"{path}{'/' + d if d else ''}", {"path": path, "name": name, "data_dir": d}) for d in data_dirs]
    loaded = []
    for where, kwargs in jobs:
        try:
            loaded.append((where, datasets.load_dataset(split=split, **kwargs)))
        except EFTEvalError:
            raise
        except Exception as error:  # datasets raises many types; the user needs the source and the reason
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise EFTEvalError(f"cannot load {where}: {reason}") from error
    return loaded


def _require_field(records: Any, field: str, where: str, what: str) -> None:
    if field not in records.column_names:
        raise EFTEvalError(
            f"{where}: records have no field {field!r} ({what}); found fields: {', '.join(records.column_names) or 'none'}"
        )
    for index, value in enumerate(records[field]):
        if not isinstance(value, str):
            raise EFTEvalError(f"{where}: record {index} has no string field {field!r}")


def _draw(docs: list[dict[str, Any]], num_docs: int | None, seed: int) -> list[dict[str, Any]]:
    """`num_docs` documents drawn without replacement, in drawn order (all of them, shuffled, if fewer)."""
    if num_docs is None:
        return docs
    count = min(int(num_docs), len(docs))
    return [docs[i] for i in random.Random(int(seed)).sample(range(len(docs)), count)]


def _dataset(docs: list[dict[str, Any]]) -> dict[str, Any]:
    import datasets

    if not docs:
        raise EFTEvalError("the task selected no documents (check the data files and the filters)")
    try:
        table = datasets.Dataset.from_list(docs)
    except (TypeError, ValueError) as error:  # pyarrow: one field holding a number here, text there
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EFTEvalError(f"{docs[0].get('source')}: a field holds values of different types across records "
                           f"({reason}); give each field one type") from error
    return datasets.DatasetDict({"test": table})


def _as_list(value: str | Sequence[str] | None) -> list[Any]:
    if value is None:
        return [None]
    return [value] if isinstance(value, str) else list(value)
