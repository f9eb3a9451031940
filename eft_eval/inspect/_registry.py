"""The module inspect loads through the `inspect_ai` entry point: it registers the `eft` provider.

`pyproject.toml` names it (`[project.entry-points.inspect_ai] eft_eval = ...`), so after
`pip install eft-eval` inspect finds `--model eft/NAME` with nothing imported by hand. The
provider class is imported only when an `eft/...` model is made: listing providers loads no torch.
"""

from __future__ import annotations

from inspect_ai.model import ModelAPI, modelapi


@modelapi(name="eft")
def eft() -> type[ModelAPI]:
    from eft_eval.inspect._provider import EFTModelAPI

    return EFTModelAPI


__all__ = ["eft"]
