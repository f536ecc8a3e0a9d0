"""`charrnn serve` over real HTTP on a loopback port (uvicorn in a thread): a client that leaves
stops its generation, several clients at once each get their own seeded text, and the caps hold
for bodies sent in chunks."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import make_checkpoint
from serve_support import LiveServer, parse_events, request, response_lines, wait_for

from charrnn.checkpoint import load_model
from charrnn.config import SampleConfig
from charrnn.output import sample_record
from charrnn.sampling import Generation

ENDLESS = 5_000_000  # characters: minutes of generation, so only a stop can end it in seconds


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("live") / "tiny.pt", cell="gru")


@pytest.fixture(scope="module")
def server(checkpoint: Path):
    with LiveServer(checkpoint, max_length=ENDLESS, max_request_bytes=10_000) as live:
        yield live


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_client_leaving_mid_request_stops_its_generation(server, stream):
    connection = server.connect()
    body = json.dumps({"length": ENDLESS, "stream": stream})
    connection.request("POST", "/v1/sample", body, {"Content-Type": "application/json"})
    if stream:
        response = connection.getresponse()
        events = parse_events(response_lines(response))
        assert next(events)[0] == "start"
        assert next(events)[0] == "piece"
    wait_for(lambda: server.generating() == 1, 10, "the generation to start")
    connection.sock.shutdown(socket.SHUT_RDWR)
    connection.close()
    wait_for(lambda: server.generating() == 0, 10, "the generation to stop")


def solo(checkpoint: Path, body: dict) -> list[dict]:
    """What one request alone must answer: the library's Generation, as charrnn sample runs it."""
    loaded = load_model(checkpoint, "cpu")
    generation = Generation(loaded.model, loaded.vocab, SampleConfig(**body))
    return [sample_record(sample) for sample in generation.run()]


def ask(server: LiveServer, body: dict) -> list[dict]:
    if not body.get("stream"):
        status, answer = request(server.url, "POST", "/v1/sample", body)
        assert status == 200, answer
        return answer["samples"]
    connection = server.connect()
    try:
        connection.request(
            "POST", "/v1/sample", json.dumps(body), {"Content-Type": "application/json"}
        )
        events = parse_events(response_lines(connection.getresponse()))
        finished = [data for name, data in events if name == "sample"]
    finally:
        connection.close()
    return [{k: v for k, v in data.items() if k != "sample"} for data in finished]


@pytest.mark.slow
def test_several_clients_at_once_each_get_their_own_seeded_text(server, checkpoint):
    bodies = [
        {"seed": 1, "length": 3000},
        {"seed": 2, "length": 2500, "temperature": 1.3, "stream": True},
        {"seed": 3, "length": 2000, "top_p": 0.7, "prime": "To be"},
        {"seed": 4, "length": 2500, "top_k": 3, "num_samples": 2, "stream": True},
        {"seed": 1, "length": 3000, "stream": True},
        {"seed": 5, "length": 1500, "stop": "the"},
    ]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: ask(server, body), bodies))
    for body, answer in zip(bodies, answers, strict=True):
        options = {k: v for k, v in body.items() if k != "stream"}
        assert answer == solo(checkpoint, options), body
    assert answers[0] == answers[4]  # the same seed, whole or streamed
    assert server.generating() == 0


def test_a_chunked_body_over_the_cap_is_refused_with_413(server):
    connection = server.connect()
    chunks = (b'{"text": "' + b"a" * 6000, b"a" * 6000 + b'"}')
    connection.request(
        "POST", "/v1/score", iter(chunks), {"Content-Type": "application/json"}, encode_chunked=True
    )
    response = connection.getresponse()
    assert response.status == 413
    assert "over 10,000 bytes" in json.loads(response.read())["error"]
    connection.close()


def test_page_is_served_over_http(server):
    connection = server.connect()
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200 and b"/static/app.js" in response.read()
    connection.close()
