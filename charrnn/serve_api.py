"""The HTTP API of `charrnn serve`: POST /v1/sample, POST /v1/score, GET /v1/model, GET /healthz,
and the web page at /.

Each request runs the library's own path, so it answers what the CLI would: /v1/sample makes a
`Generation` from a `SampleConfig` (a seeded request gives the text `charrnn sample --seed`
gives, whatever else is running), /v1/score runs `score_stream` and writes rows with the same
functions as `charrnn score --json`, /v1/model is `charrnn info`'s rows. Every request has its
own generator on a worker thread; requests are not batched together.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import torch
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from . import __version__
from .checkpoint import Checkpoint
from .config import SampleConfig, ScoreConfig, ServeConfig, flag, to_dict
from .errors import CharRNNError, ConfigError
from .output import (
    SURPRISAL_EDGES,
    checkpoint_rows,
    sample_record,
    score_record,
    score_total_record,
)
from .sampling import Generation, Piece
from .score_results import ScoredText, TextScore, summarize
from .scoring import score_stream
from .serve_http import (
    BodyLimit,
    EventStream,
    Json,
    Stopping,
    api_message,
    in_thread,
    install_error_handlers,
    sse,
)

T = TypeVar("T")
# Requests computing at once, each on its own thread; more wait their turn in order. A request
# holds a thread only while it computes a batch (PULL_BUDGET_S), so waiting requests interleave.
WORKER_THREADS = 64
WEB_DIR = Path(__file__).resolve().parent / "web"
_SAMPLE = {f.name: f.default for f in dataclasses.fields(SampleConfig)}
_SCORE = {f.name: f.default for f in dataclasses.fields(ScoreConfig)}


class SampleRequest(BaseModel):
    """POST /v1/sample: the options of `charrnn sample`, with the same defaults and rules."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prime: str = Field(_SAMPLE["prime"], description="Text the model reads first.")
    length: int = Field(_SAMPLE["length"], description="Characters per sample (server cap).")
    temperature: float = Field(_SAMPLE["temperature"], description="> 0; above 1 wilder.")
    greedy: bool = Field(False, description="Always the most likely character.")
    top_k: int | None = Field(None, description="Draw among the K most likely characters.")
    top_p: float | None = Field(None, description="Nucleus: 0 < P <= 1 of the probability.")
    seed: int | None = Field(None, description="Same seed: same text. Default: random.")
    stop: str | None = Field(None, description="End a sample where this text appears.")
    num_samples: int = Field(_SAMPLE["num_samples"], description="Samples in one batch (cap).")
    unknown: str = Field(_SAMPLE["unknown"], description="Unseen prime characters: error, skip.")
    stream: bool = Field(False, description="Server-sent events as text is made.")


class ScoreRequest(BaseModel):
    """POST /v1/score: the text and the options of `charrnn score`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(description="The text to score.")
    whole: bool = Field(False, description="Score it as one text instead of line by line.")
    context: str = Field(_SCORE["context"], description="Read before each line (or the text).")
    strict: bool = Field(False, description="Unseen characters are an error, not skipped.")
    surprisal: bool = Field(False, description="Also each character's surprisal in bits.")


REQUEST_FIELDS = (*SampleRequest.model_fields, *ScoreRequest.model_fields)


class Served:
    """The model a server holds, its caps, and the generations running now."""

    def __init__(self, loaded: Checkpoint, config: ServeConfig):
        self.loaded, self.config = loaded, config
        self.device = str(loaded.model.head.weight.device)
        self.generating = 0
        self.stopping = False  # set when the server stops: open requests end at once
        self.limiter = anyio.CapacityLimiter(WORKER_THREADS)
        self.description = {
            "info": dict(checkpoint_rows(loaded)),
            "model_config": to_dict(loaded.model_config),
            "vocab": "".join(loaded.vocab.chars),
            "device": self.device,
            "limits": {
                "max_length": config.max_length,
                "max_samples": config.max_samples,
                "max_request_bytes": config.max_request_bytes,
            },
        }

    def generation(self, request: SampleRequest) -> Generation:
        """A Generation for the request: the CLI's rules, then this server's caps."""
        config = SampleConfig(**request.model_dump(exclude={"stream"}))
        for name, cap in (("length", "max_length"), ("num_samples", "max_samples")):
            limit = getattr(self.config, cap)
            if getattr(config, name) > limit:
                raise ConfigError(f"{name} must be at most {limit:,} on this server ({flag(cap)})")
        return Generation(self.loaded.model, self.loaded.vocab, config)

    def stop(self) -> None:
        """End open requests after their current batch (a stream gets an error event)."""
        self.stopping = True

    def work(self, items: Iterable[T]) -> AsyncIterator[list[T]]:
        """Items of a blocking iterable made on a worker thread, until the server stops."""
        return in_thread(items, self.limiter, lambda: self.stopping)

    async def pieces(self, generation: Generation) -> AsyncIterator[list[Piece]]:
        """The generation's pieces, made on a worker thread, counted in `generating` meanwhile."""
        self.generating += 1
        try:
            async with contextlib.aclosing(self.work(generation)) as batches:
                async for batch in batches:
                    yield batch
        finally:
            self.generating -= 1


def served(request: Request) -> Served:
    return request.app.state.served


Server = Annotated[Served, Depends(served)]


def create_app(loaded: Checkpoint, config: ServeConfig) -> FastAPI:
    """The ASGI app serving `loaded` (already on its device) within `config`'s caps."""
    if loaded.model.head.weight.device.type == "cpu":
        # One thread per request: intra-op threads of concurrent requests would fight for the
        # cores, and the generation loop runs on one thread anyway (decoding.fast_step_mode).
        torch.set_num_threads(1)
    app = FastAPI(
        title="charrnn",
        version=__version__,
        summary="A character-level RNN language model kept loaded: sample, score, describe.",
        redoc_url=None,
    )
    app.state.served = Served(loaded, config)
    app.add_middleware(BodyLimit, max_bytes=config.max_request_bytes)
    install_error_handlers(app, REQUEST_FIELDS)
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/v1/model", model, methods=["GET"])
    app.add_api_route("/v1/sample", sample, methods=["POST"])
    app.add_api_route("/v1/score", score, methods=["POST"])
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app


async def healthz(server: Server) -> dict[str, Any]:
    """Up; and how many generations are running now."""
    return {"status": "ok", "generating": server.generating}


async def model(server: Server) -> Json:
    """What `charrnn info` shows (as `info`), the model's shape, vocabulary, device and caps."""
    return Json(server.description)


async def sample(body: SampleRequest, request: Request, server: Server) -> Any:
    """Generate text: {"samples": [...]} as `charrnn sample --json` writes them, or with
    "stream": true server-sent events: start, piece (text as it is made), sample, done."""
    generation = server.generation(body)
    if body.stream:
        return EventStream(_sample_events(generation, server.pieces(generation)))
    async with contextlib.aclosing(server.pieces(generation)) as batches:
        async for _ in batches:
            if await request.is_disconnected():
                return Json({"error": "the client left"}, status_code=499)
    return Json(
        {
            "samples": [sample_record(s) for s in generation.samples],
            "note": generation.skipped_note,
        }
    )


async def _sample_events(
    generation: Generation, batches: AsyncIterator[list[Piece]]
) -> AsyncIterator[str]:
    start = {"prime": generation.prime, "seeds": list(generation.seeds)}
    yield sse("start", {**start, "note": generation.skipped_note})
    try:
        async with contextlib.aclosing(batches):
            async for pieces in batches:
                yield "".join(_piece_events(piece) for piece in pieces)
    except CharRNNError as problem:
        yield sse("error", {"error": api_message(str(problem), REQUEST_FIELDS)})
        return
    except Stopping as problem:
        yield sse("error", {"error": str(problem)})
        return
    except Exception as problem:  # a bug: the status (200) is sent, so it ends the stream
        yield sse("error", {"error": f"internal error: {type(problem).__name__}: {problem}"})
        return
    yield sse("done", {})


def _piece_events(piece: Piece) -> str:
    events = sse("piece", {"sample": piece.sample, "text": piece.text}) if piece.text else ""
    if piece.finished is not None:
        events += sse("sample", {"sample": piece.sample, **sample_record(piece.finished)})
    return events


async def score(body: ScoreRequest, request: Request, server: Server) -> Json:
    """Score text: {"rows": [...], "total": {...}} with the fields of `charrnn score --json`;
    with "surprisal": true each row also has each character's surprisal in bits."""
    config = ScoreConfig(context=body.context, strict=body.strict)
    blocks = score_stream(
        server.loaded, [body.text], config, whole=body.whole, per_char=body.surprisal
    )
    rows: list[dict[str, Any]] = []
    scored: list[ScoredText] = []
    async with contextlib.aclosing(server.work(blocks)) as batches:
        async for batch in batches:
            for block in batch:
                for text_score in block:
                    scored.append(text_score)
                    number = None if body.whole else len(scored)
                    rows.append(_score_row(number, text_score, body.surprisal))
            if await request.is_disconnected():
                return Json({"error": "the client left"}, status_code=499)
    result: dict[str, Any] = {
        "rows": rows,
        "total": score_total_record(summarize(scored), len(rows)),
    }
    if body.surprisal:
        result["surprisal_edges"] = list(SURPRISAL_EDGES)
    return Json(result)


def _score_row(number: int | None, scored: ScoredText, surprisal: bool) -> dict[str, Any]:
    row = score_record((number, scored))
    if surprisal and isinstance(scored, TextScore):
        row["surprisal"] = [round(bits, 4) for bits in scored.surprisal_bits.tolist()]
    return row


async def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html")
