"""The HTTP plumbing of `charrnn serve`, apart from what the endpoints mean: JSON without NaN,
errors as one clear JSON message, the cap on a request's size, server-sent events that end
(and stop their work) when the client leaves, and blocking iterators run on worker threads.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import flag
from .errors import CharRNNError

T = TypeVar("T")

PULL_BUDGET_S = 0.015  # a worker thread hands back what it made in this long: few thread hops,
# and a stream still gets its text about 60 times a second


def finite(value: Any) -> Any:
    """`value` with NaN and infinities as None, at any depth: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


class Json(JSONResponse):
    """JSON as UTF-8 text (not \\u escapes), NaN and infinities as null."""

    def render(self, content: Any) -> bytes:
        return json.dumps(finite(content), ensure_ascii=False, allow_nan=False).encode("utf-8")


def failure(status: int, message: str) -> Json:
    return Json({"error": message}, status_code=status)


# The library names options by their CLI flags ("--top-p must be in (0, 1]"); a client of the
# API sent JSON fields, so messages name those: top_p, "greedy": true, "unknown": "skip".
_BOOLEAN_FIELDS = ("greedy", "strict", "whole")
_CHOICE_VALUES = {"unknown": ("error", "skip")}


def api_message(message: str, fields: Iterable[str]) -> str:
    """A library message with the CLI flags of request fields written as those fields."""
    by_flag = {flag(name): name for name in fields}

    def field(match: re.Match[str]) -> str:
        name, value = by_flag.get(match[1]), match[2]
        if name is None:
            return match[0]
        if value is not None and value in _CHOICE_VALUES.get(name, ()):
            return f'"{name}": "{value}"'
        tail = "" if value is None else f" {value}"
        return (f'"{name}": true' if name in _BOOLEAN_FIELDS else name) + tail

    return re.sub(r"(--[a-z][a-z0-9-]*)(?: ([a-z]+)\b)?", field, message)


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """Pydantic's errors for a request body as one line: what is wrong with which field."""
    parts = []
    for problem in errors:
        where = ".".join(str(part) for part in problem["loc"] if part != "body")
        kind = problem["type"]
        if kind == "json_invalid":
            parts.append(f"the body is not valid JSON ({problem.get('ctx', {}).get('error')})")
        elif kind == "missing" and not where:
            parts.append("the body is missing: send a JSON object")
        elif not where and isinstance(problem.get("input"), bytes):
            parts.append("send the body as a JSON object, with Content-Type: application/json")
        elif not where:
            parts.append(
                f"the body must be a JSON object, not {type(problem.get('input')).__name__}"
            )
        elif kind == "missing":
            parts.append(f"{where} is required")
        elif kind == "extra_forbidden":
            parts.append(f"unknown field {where!r} (see /docs for the fields)")
        else:
            parts.append(f"{where or 'the body'}: {problem['msg']}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI, fields: Iterable[str]) -> None:
    """Every error a JSON object {"error": one line}: 422 for a request the rules refuse (the
    CLI's rules and messages), 503 while the server stops, the framework's own status otherwise;
    a bug is a 500 that names itself, without a traceback."""
    fields = tuple(fields)

    async def invalid(request: Request, problem: RequestValidationError) -> Json:
        return failure(422, describe_validation(list(problem.errors())))

    async def refused(request: Request, problem: CharRNNError) -> Json:
        return failure(422, api_message(str(problem), fields))

    async def http_error(request: Request, problem: HTTPException) -> Json:
        return failure(problem.status_code, str(problem.detail))

    async def stopping(request: Request, problem: Stopping) -> Json:
        return failure(503, str(problem))

    async def bug(request: Request, problem: Exception) -> Json:
        return failure(500, f"internal error: {type(problem).__name__}: {problem} (a charrnn bug)")

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(CharRNNError, refused)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Stopping, stopping)
    app.add_exception_handler(Exception, bug)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is refused with 413 before any endpoint
    sees it, whether it declares its length or not. A body within the cap is read whole (it is
    small) and handed on; later messages (the client leaving) pass through."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = (
            f"the request is over {self.max_bytes:,} bytes, this server's limit "
            "(charrnn serve --max-request-bytes)"
        )
        await failure(413, message)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def sse(event: str, data: Any) -> str:
    """One server-sent event: its name and a JSON object on one data line."""
    return f"event: {event}\ndata: {json.dumps(finite(data), ensure_ascii=False)}\n\n"


class EventStream(StreamingResponse):
    """A text/event-stream response whose events come from an async generator. The generator is
    closed however the response ends: sent whole, the client gone (Starlette cancels the send),
    or the server stopping, so whatever it drives stops with it."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[str]):
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(events, headers=headers)
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.events.aclose()  # type: ignore[attr-defined]


class Stopping(Exception):
    """The server is stopping: work in progress ends now instead of being cancelled later."""

    def __str__(self) -> str:
        return "the server is stopping; send the request again when it is back"


def _pull(items: Iterator[T], budget_s: float) -> list[T]:
    """The next items, for up to budget_s (at least one); [] when there are none left."""
    pulled, deadline = [], time.perf_counter() + budget_s
    for item in items:
        pulled.append(item)
        if time.perf_counter() >= deadline:
            break
    return pulled


async def in_thread(
    items: Iterable[T],
    limiter: anyio.CapacityLimiter,
    stopping: Callable[[], bool] = lambda: False,
    budget_s: float = PULL_BUDGET_S,
) -> AsyncIterator[list[T]]:
    """A blocking iterable's items in batches, each made on a worker thread while the event
    loop serves others. Nothing is made ahead: when the consumer stops (the client left), the
    work stops; the iterator is then closed (a generator's `finally` runs). Raises Stopping
    after a batch once stopping() is true."""
    iterator = iter(items)
    try:
        while batch := await anyio.to_thread.run_sync(_pull, iterator, budget_s, limiter=limiter):
            yield batch
            if stopping():
                raise Stopping
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # the thread has returned: run_sync waits for it even when cancelled
