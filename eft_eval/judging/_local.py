"""The offline judge: a local transformers chat model, in-process (default SmolLM2-135M-Instruct).

Small models rarely follow an answer format, so the answer is built in two steps and always parses:

1. *Reasoning*: the assistant turn is started with `Reason:` and the model writes greedily for at
   most `local.max_new_tokens` tokens, stopping early where it writes the score label itself.
2. *Score*: `\\n<score label>:` is appended and the score is decoded greedily under a constraint:
   at each step only tokens that continue a valid score (the judge's integer range, or one of its
   abstain tokens such as ` None`) or end one are allowed, and the most probable is taken. So the
   score is the model's own choice by the log-probs of the candidate score tokens, never a
   made-up default.

The raw answer recorded is `Reason: <reasoning>\\n<label>: <score>`, read by the usual parser.
"""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

from eft_eval.judging._cache import Completion
from eft_eval.judging._config import JudgeConfig
from eft_eval.judging._spec import JudgeSpec, Message
from eft_eval.models import cache_kwargs, cached_gguf, load_gguf, output_cache

_MAX_CANDIDATES = 1001


class LocalBackend:
    """Answers one request at a time (a CPU model gains nothing from concurrent calls)."""

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    async def complete(self, messages: list[Message], model: str, params: dict[str, Any],
                       spec: JudgeSpec) -> Completion:
        # A thread keeps the event loop (progress bar, other judges' cache hits) responsive.
        return await asyncio.to_thread(self._complete, messages, model, spec)

    async def aclose(self) -> None:
        self._model = self._tokenizer = None

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, gguf_file = self.config.resolved_local_model()
        converted = self._converted_folder(path, gguf_file)
        # Reading a GGUF file means parsing its tokenizer and de-quantizing every tensor (tens of
        # seconds on a small CPU): a copy this process already read (the demo's EFT model) is used as
        # it is; otherwise the float32 copy saved beside the cache loads in about a second.
        shared = cached_gguf(path, gguf_file) if gguf_file else None
        if shared is None and converted is not None and (converted / "config.json").is_file():
            path, gguf_file = str(converted), None
        if gguf_file:
            shared = shared or load_gguf(path, gguf_file)
            self._tokenizer, self._model = shared.tokenizer, shared.model
            if converted is not None and not (converted / "config.json").is_file():
                self._save_converted(converted)
            return
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def _save_converted(self, folder: Path) -> None:
        import shutil

        from safetensors.torch import save_model

        # `save_pretrained` refuses models read from GGUF; the de-quantized weights are plain float32.
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        config = self._model.config
        quantization = getattr(config, "quantization_config", None)
        if quantization is not None:
            del config.quantization_config
        try:
            config.save_pretrained(partial)
        finally:
            if quantization is not None:
                config.quantization_config = quantization
        self._model.generation_config.save_pretrained(partial)
        save_model(self._model, str(partial / "model.safetensors"), metadata={"format": "pt"})
        self._tokenizer.save_pretrained(partial)
        shutil.rmtree(folder, ignore_errors=True)
        partial.replace(folder)

    def _converted_folder(self, path: str, gguf_file: str | None) -> Path | None:
        """Where a GGUF model's converted copy lives: next to the judge cache (none without a cache)."""
        if not gguf_file or self.config.cache_path is None:
            return None
        source = Path(path) / gguf_file
        stamp = f"{source.stat().st_size}-{int(source.stat().st_mtime)}" if source.is_file() else "hub"
        return self.config.cache_path.parent / "local-models" / f"{Path(gguf_file).stem}-{stamp}"

    def _complete(self, messages: list[Message], model_name: str, spec: JudgeSpec) -> Completion:
        import torch

        with self._lock, torch.inference_mode():
            threads = torch.get_num_threads()
            torch.set_num_threads(self.config.local.threads)
            try:
                self._load()
                tokenizer = self._tokenizer
                prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                prompt += f"{spec.reason_label}:"
                reasoning, generated, prompt_ids, cache = self._reason(prompt, spec)
                answer_prefix = f"{prompt} {reasoning}\n{_score_label(spec)}"
                score_text, score_tokens = self._constrained_score(answer_prefix, spec, prompt_ids, cache)
            finally:
                torch.set_num_threads(threads)
        prompt_tokens = len(prompt_ids)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": generated + score_tokens,
                 "total_tokens": prompt_tokens + generated + score_tokens}
        closing = spec.verdict_format.split("{verdict}")[1] if spec.pairwise else ""
        text = f"{spec.reason_label}: {reasoning}\n{_score_label(spec)}{score_text}{closing}"
        return Completion(text=text, usage=usage, model=model_name)

    def _reason(self, prompt: str, spec: JudgeSpec) -> tuple[str, int, list[int], Any]:
        """Greedy reasoning, cut where the model starts the score line itself.

        Also returns the prompt's token ids and the KV cache, so the score step need not re-read the prompt.
        """
        tokenizer, model = self._tokenizer, self._model
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        output = model.generate(
            **inputs,
            max_new_tokens=self.config.local.max_new_tokens,
            do_sample=False,
            # Our own check: transformers' `stop_strings` re-indexes the whole vocabulary every call.
            stopping_criteria=[_StopAtLabel(tokenizer, inputs["input_ids"].shape[1], _score_label(spec).rstrip(":"))],
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            return_dict_in_generate=True,
        )
        prompt_ids = inputs["input_ids"][0].tolist()
        new_tokens = output.sequences[0, len(prompt_ids):]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        cut = text.lower().find(_score_label(spec).rstrip(":").lower())
        text = text[:cut] if cut >= 0 else text
        # One paragraph: the score line must start right after it.
        return " ".join(text.split()), len(new_tokens), prompt_ids, output_cache(output)

    def _constrained_score(self, prefix: str, spec: JudgeSpec, prompt_ids: list[int], cache: Any) -> tuple[str, int]:
        """The most probable valid score (or abstain token) after `prefix`, token by token."""
        import torch

        tokenizer, model = self._tokenizer, self._model
        prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        # Candidates are tokenized after the score label, as the model would split them writing it.
        context = f"\n{_score_label(spec)}"
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
        trie = _Trie()
        for candidate in _candidates(spec, self.config.local.max_count):
            ids = tokenizer(context + candidate, add_special_tokens=False)["input_ids"]
            if ids[: len(context_ids)] == context_ids and len(ids) > len(context_ids):
                trie.add(ids[len(context_ids):], candidate)
        enders = {tokenizer.eos_token_id, *tokenizer("\n", add_special_tokens=False)["input_ids"]} - {None}

        node, chosen = trie.root, []
        input_ids, past = torch.tensor([prefix_ids]), None
        cached = cache.get_seq_length() if cache is not None and hasattr(cache, "crop") else 0
        if cached >= len(prompt_ids) and prefix_ids[: len(prompt_ids)] == prompt_ids:
            # Keep the prompt's keys and values; re-read only the cleaned reasoning and the label.
            # (transformers 5 `crop` takes minus the number of tokens to drop.)
            cache.crop(len(prompt_ids) - cached)
            input_ids, past = torch.tensor([prefix_ids[len(prompt_ids):]]), cache
        while node.children:
            output = model(input_ids=input_ids, **cache_kwargs(model, past), use_cache=True)
            past = output_cache(output)
            logprobs = torch.log_softmax(output.logits[0, -1].float(), dim=-1)
            best_child = max(node.children, key=lambda token: float(logprobs[token]))
            end_score = max((float(logprobs[t]) for t in enders), default=-math.inf) if node.value else -math.inf
            if end_score > float(logprobs[best_child]):
                break  # the model ends the score here, e.g. "1" rather than "10"
            chosen.append(best_child)
            node = node.children[best_child]
            input_ids = torch.tensor([[best_child]])
        assert node.value is not None, "every trie leaf is a candidate"
        return node.value, len(chosen)


class _StopAtLabel:
    """Stops generation once the new text contains the score label (the model starts its score)."""

    def __init__(self, tokenizer: Any, prompt_length: int, label: str) -> None:
        self.tokenizer, self.prompt_length, self.label = tokenizer, prompt_length, label.lower()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        tail = self.tokenizer.decode(input_ids[0, self.prompt_length:][-16:], skip_special_tokens=True)
        return torch.full((input_ids.shape[0],), self.label in tail.lower(), dtype=torch.bool)


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: str | None = None  # the candidate ending here, if one does


class _Trie:
    def __init__(self) -> None:
        self.root = _Node()

    def add(self, token_ids: list[int], value: str) -> None:
        node = self.root
        for token in token_ids:
            node = node.children.setdefault(token, _Node())
        node.value = value


def _score_label(spec: JudgeSpec) -> str:
    """What introduces the answer's score: `Score:`, or a pairwise judge's text before its verdict (`Verdict:`)."""
    if not spec.pairwise:
        return f"{spec.score_label}:"
    before = spec.verdict_format.split("{verdict}")[0].rstrip()
    if not before:
        from eft_eval.errors import EFTEvalError

        raise EFTEvalError(f"judge {spec.name!r}: the local backend writes the verdict after the text before "
                           f"{{verdict}} in verdict_format, and {spec.verdict_format!r} has none")
    return before


def _candidates(spec: JudgeSpec, max_count: int) -> list[str]:
    """` 0`, ` 1`, ... over the judge's range (whole numbers), then its abstain tokens; a pairwise
    judge's verdicts (after a space when its format has one before `{verdict}`)."""
    if spec.pairwise:
        space = " " if spec.verdict_format.split("{verdict}")[0].endswith(" ") else ""
        return [space + verdict for verdict in [*spec.verdicts, *spec.abstain_tokens]]
    low = math.ceil(spec.score.min) if spec.score.min is not None else 0
    high = math.floor(spec.score.max) if spec.score.max is not None else low + max_count
    high = min(high, low + _MAX_CANDIDATES - 1)
    return [f" {value}" for value in range(low, high + 1)] + [f" {token}" for token in spec.abstain_tokens]
