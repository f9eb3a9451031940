"""`eft-eval analyze tv`'s page: each response token shaded by its total variation, details on hover."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eft_eval.report._render import _environment

if TYPE_CHECKING:
    from eft_eval.analysis import ResponseTV, TokenTV


def token_tv_page(responses: Sequence[ResponseTV], summary: dict[str, Any],
                  title: str = "EFT vs small fine-tuned model: token TV") -> str:
    """A self-contained page of the responses `analysis.token_tv` measured; `summary` is shown under the title."""
    from eft_eval.analysis import LOW_TV

    items = [{"prompt": r.prompt if isinstance(r.prompt, str) else repr(r.prompt),
              "tokens": [_token(token, LOW_TV) for token in r.tokens]} for r in responses]
    stats = ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in summary.items())
    return str(_environment().get_template("token_tv.html.j2").render(title=title, stats=stats, low=LOW_TV,
                                                                      items=items))


def _token(token: TokenTV, low: float) -> dict[str, Any]:
    moved = {way: ", ".join(f"{t.token!r} {t.p_ft:.3f}->{t.p_eft:.3f}" for t in getattr(token, way))
             for way in ("up", "down")}
    # Opacity grows with TV; tokens under the low-TV threshold stay almost unshaded.
    return {"text": token.text, "high": token.tv >= low, "alpha": f"{min(1.0, token.tv / 0.5):.3f}",
            "tip": f"TV {token.tv:.3f}\nup: {moved['up']}\ndown: {moved['down']}"}


__all__ = ["token_tv_page"]
