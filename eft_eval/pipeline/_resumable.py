"""An lm-eval `LM` that persists every finished generation and skips those already stored.

lm-eval's own `--use_cache` (`CachingLM`) is not enough for a resumable EFT run: it never caches
sampled generations (`do_sample=True`). The EFT backend's samples depend only on (prompt, copy
number, seed), never on batching or on which requests run together, so reusing a stored sample gives
the very text an uninterrupted run would have produced. The backend reports each generation through
lm-eval's cache hook as soon as its batch finishes; this wrapper points that hook at a
`GenerationStore`.

The EFT model itself is built only if some generation is missing: a re-run of a finished
generation step loads no weights.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from lm_eval.api.model import LM, CacheHook

from eft_eval.lm_eval import MessageMarkerChat
from eft_eval.pipeline._store import GenerationStore, request_key


class _StoreHook(CacheHook):
    """lm-eval's cache hook, writing `generate_until` answers to the store as they are reported."""

    def __init__(self, store: GenerationStore) -> None:
        super().__init__(None)
        self.store = store
        self.reported: Counter[str] = Counter()

    def add_partial(self, attr: str, req: Iterable[Any], res: Any) -> None:
        if attr != "generate_until":
            return
        key = request_key(list(req))
        self.store.add(key, self.reported[key], str(res))
        self.reported[key] += 1


class ResumableLM(MessageMarkerChat, LM):  # chat: the eft backend's marker, no model needed
    """Wraps the `eft` backend (built lazily by `make_lm`) for one process."""

    def __init__(self, make_lm: Callable[[], LM], store: GenerationStore, model_info: dict[str, Any],
                 progress: bool = True) -> None:
        super().__init__()
        self._progress = progress
        self._make_lm = make_lm
        self._lm: LM | None = None
        self._hook = _StoreHook(store)
        self._model_info = model_info
        self.store = store
        self.reused = 0
        self.generated = 0

    @property
    def inner(self) -> LM:
        if self._lm is None:
            self._lm = self._make_lm()
            self._lm.set_cache_hook(self._hook)
        return self._lm

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        keys = [request_key(request.args) for request in requests]
        copies = Counter(keys)
        results: list[str | None] = [None] * len(requests)
        handed_out: defaultdict[str, int] = defaultdict(int)
        missing: list[int] = []
        for index, key in enumerate(keys):
            # A request's copies (lm-eval `repeats`) are reused only all together: the backend
            # numbers copies within one call, so re-generating a subset would renumber them.
            stored = self.store.get(key, copies[key])
            if stored is None:
                missing.append(index)
            else:
                results[index] = stored[handed_out[key]]
                handed_out[key] += 1
        self.reused += len(requests) - len(missing)
        if missing:
            self._hook.reported.clear()
            texts = self.inner.generate_until([requests[i] for i in missing],
                                              disable_tqdm=disable_tqdm or not self._progress)
            for index, text in zip(missing, texts):
                results[index] = text
            self._store_unreported([requests[i] for i in missing], texts)
            self.generated += len(missing)
        return [text if text is not None else "" for text in results]

    def _store_unreported(self, requests: list[Any], texts: list[str]) -> None:
        """A backend that does not call the cache hook still gets its answers stored, at the end."""
        counted: Counter[str] = Counter()
        for request, text in zip(requests, texts):
            key = request_key(request.args)
            if counted[key] >= self._hook.reported[key]:
                self.store.add(key, counted[key], text)
            counted[key] += 1

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return list(self.inner.loglikelihood(requests, disable_tqdm=disable_tqdm))

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        return list(self.inner.loglikelihood_rolling(requests, disable_tqdm=disable_tqdm))

    def get_model_info(self) -> dict[str, Any]:
        return dict(self._model_info)


__all__ = ["ResumableLM"]
