"""The FastAPI application: OpenAI-compatible routes over a `BatchEngine`.

Routes: `POST /v1/chat/completions`, `POST /v1/completions` (both streamed or not), `GET /v1/models`,
`GET /v1/models/{id}`, `GET /health` (no key needed, for load balancers and scripts waiting for start),
`GET /metrics` (Prometheus text format, no key needed, as vLLM's and TGI's; see `_metrics.py`).
Every failure is an OpenAI error object (`{"error": {"message", "type", "param", "code"}}`) with a
one-line message; nothing answers with a traceback. The API key is compared in constant time and
never logged or echoed.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from eft_eval.serve._body import check_values, parse_body
from eft_eval.serve._completions import (
    Limits,
    collect,
    response_body,
    start_job,
    stream_events,
)
from eft_eval.serve._engine import BatchEngine
from eft_eval.serve._metrics import CONTENT_TYPE, ServeMetrics
from eft_eval.serve._schemas import (
    APIError,
    ChatCompletionRequest,
    CompletionRequest,
    validation_message,
)

logger = logging.getLogger(__name__)

RequestModel = TypeVar("RequestModel", bound=BaseModel)


@dataclass(frozen=True)
class ServeSettings:
    """How the server answers; `api_key` None means no key is needed."""

    served_name: str
    api_key: str | None = field(default=None, repr=False)
    max_body_bytes: int = 1 << 20
    limits: Limits = field(default_factory=Limits)


def create_app(engine: BatchEngine, settings: ServeSettings) -> FastAPI:
    """The app; its lifespan starts the engine's decoder thread and, on shutdown, drains it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        engine.stop()

    app = FastAPI(title="eft-eval serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    _install_error_handlers(app)
    app.add_middleware(_CountRequests, metrics=engine.metrics)

    async def require_key(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise APIError(401, "missing API key: send the header 'Authorization: Bearer KEY'", code="invalid_api_key")
        if not secrets.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise APIError(401, "incorrect API key", code="invalid_api_key")

    router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

    @router.get("/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(settings.served_name)]}

    @router.get("/models/{model_id:path}")
    async def get_model(model_id: str) -> dict[str, Any]:
        _check_model(model_id, settings.served_name)
        return _model_card(settings.served_name)

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
        parsed = _parse(ChatCompletionRequest, await _read_json(request, settings.max_body_bytes))
        return await _complete(request, parsed, bool(parsed.logprobs))

    @router.post("/completions", response_model=None)
    async def completions(request: Request) -> JSONResponse | StreamingResponse:
        parsed = _parse(CompletionRequest, await _read_json(request, settings.max_body_bytes))
        return await _complete(request, parsed, parsed.logprobs is not None)

    async def _complete(
        request: Request, parsed: ChatCompletionRequest | CompletionRequest, logprobs: bool
    ) -> JSONResponse | StreamingResponse:
        _check_model(parsed.model, settings.served_name)
        job = await start_job(engine, parsed, settings.limits)
        if parsed.stream:
            include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
            events = stream_events(job, request, settings.served_name, engine, parsed.stop_strings, logprobs,
                                   include_usage)
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        choices = await collect(job, request)
        return JSONResponse(response_body(job, choices, settings.served_name, engine, logprobs))

    app.include_router(router)

    @app.get("/health", response_model=None)
    async def health() -> dict[str, str] | JSONResponse:
        # A load balancer must see a server whose decoder thread died as down, not as healthy.
        problem = engine.problem()
        if problem is not None:
            error = APIError(503, problem, type="server_error", code="decoder_unavailable")
            return JSONResponse({"status": "unavailable", **error.body()}, status_code=503)
        return {"status": "ok"}

    @app.get("/metrics", response_model=None)
    async def metrics() -> Response:
        return Response(engine.metrics.render(), media_type=CONTENT_TYPE)

    return app


class _CountRequests:
    """Counts answered `/v1` requests by route and status (`eft_serve_requests_total`). Plain ASGI, not
    `BaseHTTPMiddleware`: that one wraps `receive`, and disconnect watching needs the real one."""

    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = getattr(scope.get("route"), "path", None)  # the route template, never a client's raw path
            if status and path is not None and path.startswith("/v1/"):
                self.metrics.requests.labels(path, str(status[0])).inc()


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": int(time.time()), "owned_by": "eft-eval"}


def _check_model(requested: str, served: str) -> None:
    if requested != served:
        raise APIError(404, f"model {requested!r} is not served here; this server serves {served!r}",
                       param="model", code="model_not_found")


async def _read_json(request: Request, limit: int) -> Any:
    """The body as JSON, refusing bodies over `limit` bytes before reading them whole."""
    too_large = APIError(400, f"request body is over this server's limit of {limit} bytes (--max-body-bytes)",
                         code="body_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body, size = bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        body += chunk
    try:
        value = parse_body(bytes(body))
        if not isinstance(value, dict):
            raise APIError(400, f"request body must be a JSON object, got {type(value).__name__}")
        check_values(value)
    except (ValueError, RecursionError) as error:  # RecursionError: nesting deeper than the parser goes
        raise APIError(400, f"request body is not valid JSON: {error}") from None
    return value


def _parse(model: type[RequestModel], body: dict[str, Any]) -> RequestModel:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        message, param = validation_message(error)
        raise APIError(400, message, param=param) from None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer", **error.headers} if error.status == 401 else error.headers
        return JSONResponse(error.body(), status_code=error.status, headers=headers or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = f"{request.method} {request.url.path}: {error.detail}"
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        return JSONResponse(APIError(error.status_code, message, type=kind).body(), status_code=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        body = APIError(500, f"internal error: {type(error).__name__}", type="server_error").body()
        return JSONResponse(body, status_code=500)
