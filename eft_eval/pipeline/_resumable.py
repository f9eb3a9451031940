"""An lm-eval `LM` that persists every finished generation and skips those already stored.

lm-eval's own `--use_cache` (`CachingLM`) is not enough for a resumable EFT run: it never caches
sampled generations (`do_sample=True`). The EFT backend's samples depend only on (prompt, copy
number, seed), never on batching or on which requests run together, so reusing a stored sample gives
the very text an uninterrupted run would have produced. The backend reports each generation through
lm-eval's cache hook as soon as its batch finishes; this wrapper points that hook at a
`GenerationStore`.

The EFT model itself is built only if some generation is missing: a re-run of a finished
generation step loads no weights. A sweep gives each grid point a `fill` that generates what is
missing for every point of its group at once, into each point's store.
"""

from __future__ import annotations

from collections import Counter
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
        self.store.add(key, self.reported[key], res if isinstance(res, str) else str(res))  # a GeneratedText stays one
        self.reported[key] += 1


class ResumableLM(MessageMarkerChat, LM):  # chat: the eft backend's marker, no model needed
    """Wraps the `eft` backend (built lazily by `make_lm`) for one process; `fill`, when given,
    stores the generations of the requests it is handed instead of the backend."""

    def __init__(self, make_lm: Callable[[], LM], store: GenerationStore, model_info: dict[str, Any],
                 progress: bool = True, fill: Callable[[list[Any]], None] | None = None) -> None:
        super().__init__()
        self._progress = progress
        self._fill = fill
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
        # A request's copies (lm-eval `repeats`) are reused only all together: the backend
        # numbers copies within one call, so re-generating a subset would renumber them.
        missing = [request for request, key in zip(requests, keys) if self.store.get(key, copies[key]) is None]
        if missing and self._fill is not None:
            self._fill(missing)
        elif missing:
            self._hook.reported.clear()
            texts = self.inner.generate_until(missing, disable_tqdm=disable_tqdm or not self._progress)
            self._store_unreported(missing, texts)
        self.reused += len(requests) - len(missing)
        self.generated += len(missing)
        handed: Counter[str] = Counter()
        texts = []
        for key in keys:
            texts.append((self.store.get(key, copies[key]) or [""] * copies[key])[handed[key]])
            handed[key] += 1
        return texts

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
