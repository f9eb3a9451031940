"""Where a component's weights go: checked before any weights are loaded.

A device is `cpu`, `cuda`, `cuda:N`, `mps` (or another accelerator torch knows and has available)
or `auto` (accelerate's `device_map="auto"`: every visible GPU, else the CPU). Refused, with one line
naming the component and what this machine has:

- text torch does not read as a device (`nonsense`);
- `cuda` on a torch build without CUDA, or where no GPU is visible; `cuda:N` past the GPUs there are;
- `meta`: it holds shapes, not weights, so nothing can be generated with it;
- a bare number (`device: 0` in a YAML file, `device=0`): torch and transformers read it as `cuda:0`,
  but a user may as well mean the CPU or "no device", so it is refused with the spelling to use.
"""

from __future__ import annotations

import torch

from eft_eval.errors import EFTEvalError


def check_device(role: str, device: object) -> None:
    """Refuse a device this machine cannot load `role`'s weights onto (see the module docstring)."""
    text = str(device).strip()
    where = f"component {role}: device={device!r}"
    if text == "auto":
        return
    if text.isdigit():
        raise EFTEvalError(f"{where} is ambiguous: write cuda:{text} for that GPU, or cpu")
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise EFTEvalError(f"{where} is not a device: use cpu, cuda, cuda:N, mps or auto "
                           f"({available_devices()})") from None
    if parsed.type == "meta":
        raise EFTEvalError(f"{where} holds no weights, so nothing can be generated on it: use cpu, cuda or auto")
    if parsed.type == "cuda":
        _check_cuda(where, parsed.index)
    elif parsed.type != "cpu":
        _check_other(where, parsed.type)


def available_devices() -> str:
    """What this machine has, for error messages: `available: cpu, cuda:0, cuda:1`."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _backend_available("mps"):
        names.append("mps")
    return "available: " + ", ".join(names)


def _check_cuda(where: str, index: int | None) -> None:
    if torch.version.cuda is None and torch.version.hip is None:
        raise EFTEvalError(f"{where}: cuda is not available in this torch build (torch {torch.__version__}); "
                           "use device=cpu")
    if not torch.cuda.is_available():
        raise EFTEvalError(f"{where}: no GPU is visible (torch.cuda.is_available() is False; check the driver "
                           "and CUDA_VISIBLE_DEVICES); use device=cpu")
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        raise EFTEvalError(f"{where}: cuda:{index} does not exist: {count} GPU(s) ({available_devices()})")


def _check_other(where: str, kind: str) -> None:
    if not _backend_available(kind):
        raise EFTEvalError(f"{where}: {kind} is not available here ({available_devices()})")


def _backend_available(kind: str) -> bool:
    """Whether torch's backend for a device type (`mps`, `xpu`, ...) says it can be used."""
    backend = getattr(torch.backends, kind, None) if kind == "mps" else getattr(torch, kind, None)
    is_available = getattr(backend, "is_available", None)
    try:
        return bool(is_available()) if callable(is_available) else False
    except Exception:  # noqa: BLE001  (a backend probe that fails means "not usable", whatever the reason)
        return False
