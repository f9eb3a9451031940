"""Model components: a loaded causal LM plus how a prompt is rendered and tokenized for it.

Loading goes through one `ModelCache`, so weights named twice in a spec (a shared reference model,
or the same weights with a chat and a plain prompt format) are loaded once. A GGUF checkpoint is
de-quantized once per process (`load_gguf`): the demo's run, its local judge and its sweep share
the one SmolLM2 file, and reading it takes seconds to tens of seconds each time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eft_eval.errors import EFTEvalError
from eft_eval.models._spec import DEFAULT_PLAIN_TEMPLATE, ComponentSpec

logger = logging.getLogger(__name__)

Message = dict[str, str]
Prompt = str | Sequence[Message]
"""A user query (rendered per component) or a conversation of {role, content} messages."""

_TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def output_width(self) -> int:
        """Rows of the output embedding: may exceed the tokenizer's vocabulary (padding)."""
        return int(self.model.get_output_embeddings().weight.shape[0])


class ModelCache:
    """Loads each distinct set of weights once (keyed by `ComponentSpec.weights_key`)."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[Any, ...], LoadedModel] = {}

    def get(self, spec: ComponentSpec) -> LoadedModel:
        key = spec.weights_key
        if key not in self._loaded:
            self._loaded[key] = load_model(spec)
        return self._loaded[key]

    def retain(self, specs: Sequence[ComponentSpec]) -> None:
        """Forget every loaded model but those of `specs` (a sweep frees what no later run needs)."""
        keep = {spec.weights_key for spec in specs}
        self._loaded = {key: model for key, model in self._loaded.items() if key in keep}

    def __len__(self) -> int:
        return len(self._loaded)


def check_local_path(role: str, spec: ComponentSpec) -> None:
    """A model that is plainly a local path (absolute, ./, ../, ~) but is not there: say so, instead
    of transformers' "Repo id must be in the form 'repo_name' or 'namespace/repo_name'"."""
    if spec.model.startswith(("/", "./", "../", "~")) and not Path(spec.model).expanduser().exists():
        # Worded as `load_model`'s own errors (the lm-eval backend finds the model_args key by the label).
        raise EFTEvalError(f"cannot load model {spec.label!r} ({role} model {spec.model} does not exist: not a "
                           "local folder, and a hub id looks like org/name)")


_GGUF_LOADED: dict[tuple[Any, ...], LoadedModel] = {}
"""GGUF checkpoints read in this process (float32 on the CPU), the last `_GGUF_KEPT` of them."""
_GGUF_KEPT = 2


def load_gguf(model: str, gguf_file: str, revision: str | None = None,
              trust_remote_code: bool = False) -> LoadedModel:
    """A GGUF checkpoint de-quantized to float32 on the CPU, read once per process and then shared.

    Callers only run the model (no training, no in-place edits), so one copy serves every
    component and the local judge; the last two files read are kept (GGUF models are small ones).
    """
    key = (*_gguf_identity(model, gguf_file, revision), trust_remote_code)
    if key not in _GGUF_LOADED:
        spec = ComponentSpec(model=model, gguf_file=gguf_file, dtype="fp32", device="cpu", revision=revision,
                             trust_remote_code=trust_remote_code)
        _GGUF_LOADED[key] = _read_model(spec)
        for stale in list(_GGUF_LOADED)[:-_GGUF_KEPT]:
            del _GGUF_LOADED[stale]
    return _GGUF_LOADED[key]


def cached_gguf(model: str, gguf_file: str, revision: str | None = None) -> LoadedModel | None:
    """The GGUF checkpoint `load_gguf` already read in this process, if it did."""
    key = _gguf_identity(model, gguf_file, revision)
    return next((loaded for cached, loaded in _GGUF_LOADED.items() if cached[:-1] == key), None)


def _gguf_identity(model: str, gguf_file: str, revision: str | None) -> tuple[Any, ...]:
    """A local file by its resolved path, size and time stamp (a replaced file is read again); a hub one by name."""
    path = Path(model, gguf_file)
    if path.is_file():
        stat = path.stat()
        return (str(path.resolve()), stat.st_size, int(stat.st_mtime), revision)  # as the local judge stamps it
    return (model, gguf_file, None, revision)


def load_model(spec: ComponentSpec) -> LoadedModel:
    """Load a causal LM and its tokenizer from a hub id, a local folder or a GGUF file."""
    if spec.gguf_file and spec.dtype in ("auto", "fp32") and spec.device == "cpu":
        return load_gguf(spec.model, spec.gguf_file, spec.revision, spec.trust_remote_code)
    return _read_model(spec)


def _read_model(spec: ComponentSpec) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    common: dict[str, Any] = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    if spec.gguf_file:
        common["gguf_file"] = spec.gguf_file
    model_kwargs: dict[str, Any] = {"dtype": _TORCH_DTYPES.get(spec.dtype, "auto")}
    if spec.gguf_file and spec.dtype == "auto":
        model_kwargs["dtype"] = torch.float32  # GGUF weights are dequantized; fp32 is exact on CPU
    if spec.device == "auto":
        model_kwargs["device_map"] = "auto"  # accelerate spreads layers over every visible GPU
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.model, **common)
        model = AutoModelForCausalLM.from_pretrained(spec.model, **common, **model_kwargs)
    except (OSError, ValueError) as error:
        where = "local folder" if Path(spec.model).exists() else "hub id or local folder"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EFTEvalError(f"cannot load model {spec.label!r} ({where}): {first_line}") from None
    if spec.device != "auto":
        model = model.to(spec.device)  # type: ignore[arg-type]  # transformers' .to stub
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    logger.info("loaded %s (%s, %s)", spec.label, model.dtype, spec.device)
    return LoadedModel(model=model, tokenizer=tokenizer)


@dataclass
class Component:
    """A role in the EFT spec (base, ft, ref, ...) bound to loaded weights and a prompt format."""

    role: str
    spec: ComponentSpec
    loaded: LoadedModel

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def render_key(self) -> tuple[Any, ...]:
        """Components with equal keys compute identical log-probs: one forward pass serves both."""
        return (self.spec.weights_key, self.spec.format, self.spec.system_prompt)

    @property
    def uses_chat_template(self) -> bool:
        if self.spec.format == "auto":
            return bool(getattr(self.tokenizer, "chat_template", None))
        return self.spec.format == "chat"

    def render(self, prompt: Prompt) -> str:
        """The prompt text this component sees, ending where the assistant's answer starts."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if self.uses_chat_template:
            if not getattr(self.tokenizer, "chat_template", None):
                raise EFTEvalError(
                    f"component {self.role} ({self.spec.label}) has format=chat but its tokenizer has no "
                    f"chat template: use {self.role}_format=plain or a template with {{query}}"
                )
            if self.spec.system_prompt and messages[0].get("role") != "system":
                messages = [{"role": "system", "content": self.spec.system_prompt}, *messages]
            return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        template = DEFAULT_PLAIN_TEMPLATE if self.spec.format in ("plain", "auto") else self.spec.format
        return render_plain(messages, template)

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of the rendered prompt (BOS added once, by the template or the tokenizer)."""
        text = self.render(prompt)
        add_special = not self.uses_chat_template  # chat templates already hold BOS where needed
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def encode_raw(self, text: str) -> list[int]:
        """Token ids of verbatim text (lm-eval's contexts), with the tokenizer's usual specials."""
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])


def render_plain(messages: Sequence[Message], template: str) -> str:
    """Render a conversation with a plain dialogue template such as `\\n\\nHuman: {query}\\n\\nAssistant:`.

    Earlier turns are rendered with the template and the assistant's answer appended; a system
    message is put first as plain text. The template's `{query}` is replaced literally (no
    str.format), so braces in user text are safe.
    """
    text = ""
    for message in messages:
        role, content = message.get("role"), message.get("content", "")
        if role == "system":
            text += content
        elif role == "user":
            text += template.replace("{query}", content)
        elif role == "assistant":
            text += " " + content
        else:
            raise EFTEvalError(f"message role {role!r} is not one of system, user, assistant")
    return text


def check_shared_vocabulary(components: Sequence[Component]) -> int:
    """All components must share one vocabulary; returns the usable vocabulary size.

    Output embeddings padded past the tokenizer's vocabulary (Llama, Falcon checkpoints) are fine:
    the padded rows are cut off, so those ids are never sampled.
    """
    first = components[0]
    first_vocab = first.tokenizer.get_vocab()
    for other in components[1:]:
        if other.tokenizer is first.tokenizer:
            continue
        other_vocab = other.tokenizer.get_vocab()
        if other_vocab != first_vocab:
            differing = sorted(set(first_vocab.items()) ^ set(other_vocab.items()), key=str)[:3]
            raise EFTEvalError(
                f"tokenizers differ: {first.role} ({first.spec.label}, {len(first_vocab)} tokens) and "
                f"{other.role} ({other.spec.label}, {len(other_vocab)} tokens), e.g. {differing}; "
                "EFT needs components that share one vocabulary"
            )
    vocab_size = len(first.tokenizer)
    narrowest = min(components, key=lambda c: c.loaded.output_width)
    if narrowest.loaded.output_width < vocab_size:
        logger.warning(
            "%s (%s) scores %d ids but the tokenizer has %d; ids past %d are never sampled",
            narrowest.role, narrowest.spec.label, narrowest.loaded.output_width, vocab_size,
            narrowest.loaded.output_width,
        )
        vocab_size = narrowest.loaded.output_width
    return vocab_size


def eos_token_ids(component: Component) -> set[int]:
    """EOS ids of a component: its generation config's (possibly several) and its tokenizer's."""
    ids: set[int] = set()
    config_eos = getattr(getattr(component.model, "generation_config", None), "eos_token_id", None)
    for value in (config_eos, component.tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx")
"""Config fields that state how many positions a model was built or trained for (lm-eval reads the same)."""


def context_length(model: Any) -> int | None:
    """The positions a model supports: its config's `max_position_embeddings` (GPT-2's `n_positions`);
    None when its config does not say."""
    config = getattr(model, "config", None)
    for key in _CONTEXT_KEYS:
        size = getattr(config, key, None)
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            return size
    return None


def context_overflow(
    components: Sequence[Component], prompt_ids: Sequence[Sequence[Sequence[int]]], added: int | Sequence[int],
) -> tuple[int, Component, int, int] | None:
    """The first (prompt index, component, prompt tokens, its context) whose prompt plus `added`
    (max_new_tokens, or each continuation's length) is over the component's context; None if all fit.

    Per component since each renders the prompt its own way: past its context a model with absolute
    positions (GPT-2) fails with an IndexError, and a RoPE model runs on silently beyond what it was
    trained on. `prompt_ids` is `[component][prompt] -> ids`, as `EFTModel.encode` gives.
    """
    for component, rows in zip(components, prompt_ids):
        limit = context_length(component.model)
        if limit is None:
            continue
        for index, ids in enumerate(rows):
            if len(ids) + (added if isinstance(added, int) else added[index]) > limit:
                return index, component, len(ids), limit
    return None


def check_context(
    components: Sequence[Component], prompt_ids: Sequence[Sequence[Sequence[int]]], added: int | Sequence[int],
    added_name: str, advice: str = "",
) -> None:
    """Refuse a prompt whose tokens plus `added` exceed a component's context (`context_overflow`);
    `advice` ends the message (default: shorten the prompt or lower `added_name`)."""
    over = context_overflow(components, prompt_ids, added)
    if over is not None:
        index, component, tokens, limit = over
        extra = added if isinstance(added, int) else added[index]
        raise EFTEvalError(
            f"prompt {index}: {component.role} ({component.spec.label}) has a context of {limit} tokens; "
            f"the prompt ({tokens} tokens) plus {added_name} ({extra}) is over it: "
            f"{advice or f'shorten the prompt or lower {added_name}'}"
        )
