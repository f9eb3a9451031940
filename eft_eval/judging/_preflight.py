"""Check, before hours of generation, that every judge endpoint takes our requests.

A refused API key used to surface only when the first judgment was asked, after every response had
been generated. `preflight` sends one cheap authenticated request per distinct endpoint (base URL
and key): `GET /models`, which OpenAI, vLLM (`--api-key`), `transformers serve` and most proxies
authenticate, and which costs no tokens and touches no judge cache (so a fully cached re-run
still sends no chat completion). Only when that answers 403 (a key restricted from listing models)
or 404 (a server without the route) does it ask each judge model for one token instead. It stops
on what can only mean a wrong configuration: 401/403 (key), 404 (URL, model), and an endpoint that
cannot be reached at all (connection refused, unknown host). Anything transient (429, 5xx, a
timeout) is left to the engine's retries: the run goes on.

The local backend makes no requests and needs no preflight.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from eft_eval.errors import EFTEvalError
from eft_eval.judging._config import JudgeConfig
from eft_eval.judging._engine import judge_model_names
from eft_eval.judging._retry import classify, describe_error
from eft_eval.judging._spec import JudgeSpec
from eft_eval.redact import client_url_and_headers, url_without_userinfo

logger = logging.getLogger(__name__)

PREFLIGHT_TIMEOUT_S = 30.0
"""A preflight waits at most this long per try (or the judge timeout, if shorter)."""


def preflight(config: JudgeConfig, judges: Sequence[JudgeSpec]) -> None:
    """Raise `EFTEvalError` (the engine's own wording) if a judge endpoint refuses us or is unreachable."""
    if config.backend != "openai" or not judges:
        return
    import openai

    models = list(dict.fromkeys(model for spec in judges for model in judge_model_names(spec, config)))
    base_url = config.resolved_base_url()
    # One endpoint per run today (one base URL, one key); the judges' models share it. Credentials
    # in the URL are sent as the judge backend sends them (basic auth).
    client_url, headers = client_url_and_headers(base_url)
    client = openai.OpenAI(api_key=config.resolved_api_key(), base_url=client_url, default_headers=headers or None,
                           timeout=min(config.timeout, PREFLIGHT_TIMEOUT_S), max_retries=1)
    where = url_without_userinfo(base_url) or "https://api.openai.com/v1"  # messages never show credentials
    try:
        try:
            client.models.list()
        except openai.APIStatusError as error:
            if error.status_code not in (403, 404):
                raise
            # A key allowed to chat but not to list models (OpenAI's restricted keys: 403), or a
            # server without GET /models (404): ask what the run will ask, one token per model.
            for model in models:
                client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say OK."}],
                                               max_tokens=1)
    except openai.APITimeoutError as error:
        logger.warning("judge endpoint %s did not answer the preflight (%s); going on", where, describe_error(error))
    except openai.APIConnectionError as error:
        cause = error.__cause__ or error
        raise EFTEvalError(
            f"cannot reach the judge server at {where} ({type(cause).__name__}: {str(cause).splitlines()[0][:160]}); "
            "check --base-url and that the server is running"
        ) from None
    except openai.OpenAIError as error:
        if classify(error) == "fatal":  # 401/403/404: the same line the engine stops with
            raise EFTEvalError(
                f"the judge server refused the request ({describe_error(error)}); check the API key, "
                f"--base-url and --judge-model {', '.join(map(repr, models))}"
            ) from None
        # 429, 5xx, a 400 for max_tokens: transient or about the request's shape, not the setup.
        logger.warning("judge endpoint %s answered the preflight with %s; going on", where, describe_error(error))
    finally:
        client.close()
