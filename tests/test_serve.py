"""`charrnn serve`'s API through FastAPI's test client: every endpoint answers what the CLI
answers (a seeded sample is `charrnn sample --seed`'s text, a score is `charrnn score --json`'s
rows, the model is `charrnn info`), and every request the rules refuse is a 4xx with one clear
JSON message, never a 500 or a traceback."""

from __future__ import annotations

import importlib.util
import json
import math
import socket
from pathlib import Path

import pytest
from conftest import cli, make_checkpoint, write
from fastapi.testclient import TestClient
from serve_support import parse_events

from charrnn import serving
from charrnn.checkpoint import load_model
from charrnn.config import SampleConfig, ServeConfig
from charrnn.output import SURPRISAL_EDGES
from charrnn.sampling import Generation
from charrnn.scoring import score
from charrnn.serve_api import WEB_DIR, create_app
from charrnn.serve_http import api_message
from charrnn.text import LN2

LIMITS = {"max_length": 2000, "max_samples": 4, "max_request_bytes": 5000}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("serve") / "tiny.pt")


@pytest.fixture(scope="module")
def client(checkpoint: Path):
    app = create_app(load_model(checkpoint, "cpu"), ServeConfig(**LIMITS))
    with TestClient(app) as test_client:
        yield test_client


def sample_with_cli(checkpoint: Path, *options: str) -> list[dict]:
    result = cli("sample", "-c", checkpoint, "--device", "cpu", "--json", "-q", *options)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_healthz_is_ok_with_nothing_generating(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "generating": 0}


def test_model_is_what_charrnn_info_shows(client, checkpoint):
    result = cli("info", checkpoint)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    values_at = len(lines[0]) - len(lines[0].removeprefix("file").lstrip())  # names are padded
    shown = {line[:values_at].rstrip(): line[values_at:] for line in lines}
    model = client.get("/v1/model").json()
    assert model["info"] == shown
    assert model["model_config"]["hidden_size"] == 16
    assert model["device"] == "cpu"
    assert model["limits"] == LIMITS
    assert len(model["vocab"]) == model["model_config"]["vocab_size"]


SEEDED = {
    "temperature and top-k": ({"temperature": 0.7, "top_k": 5}, ["-t", "0.7", "--top-k", "5"]),
    "top-p, a batch and a stop text": (
        {"top_p": 0.8, "num_samples": 3, "stop": "e"},
        ["--top-p", "0.8", "--num-samples", "3", "--stop", "e"],
    ),
    "greedy": ({"greedy": True}, ["--greedy"]),
    "a prime with an unseen character skipped": (
        {"prime": "To bé", "unknown": "skip"},
        ["--prime", "To bé", "--unknown", "skip"],
    ),
}


@pytest.mark.parametrize("body, options", SEEDED.values(), ids=SEEDED.keys())
def test_seeded_sample_is_the_text_charrnn_sample_gives(client, checkpoint, body, options):
    expected = sample_with_cli(checkpoint, "--seed", "11", "-n", "120", *options)
    response = client.post("/v1/sample", json={"seed": 11, "length": 120, **body})
    assert response.status_code == 200, response.text
    assert response.json()["samples"] == expected
    assert any(sample["text"] for sample in expected)


def test_streamed_sample_is_the_whole_sample_piece_by_piece(client):
    body = {"seed": 3, "length": 300, "num_samples": 2, "prime": "To be"}
    whole = client.post("/v1/sample", json=body).json()["samples"]
    with client.stream("POST", "/v1/sample", json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(parse_events(response.iter_lines()))
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and "error" not in names
    assert events[0][1] == {"prime": "To be", "seeds": [3, 4], "note": None}
    texts = ["", ""]
    for name, data in events:
        if name == "piece":
            texts[data["sample"]] += data["text"]
    assert texts == [sample["text"] for sample in whole]
    assert names.count("piece") > 2  # streamed in pieces, not in one
    finished = [data for name, data in events if name == "sample"]
    assert sorted(finished, key=lambda data: data["sample"]) == [
        {"sample": i, **sample} for i, sample in enumerate(whole)
    ]


def test_unseeded_sample_reports_the_seed_that_repeats_it(client, checkpoint):
    first = client.post("/v1/sample", json={"length": 60}).json()["samples"][0]
    again = client.post("/v1/sample", json={"length": 60, "seed": first["seed"]}).json()
    assert again["samples"][0] == first


def test_skipped_prime_characters_are_noted(client):
    answer = client.post("/v1/sample", json={"prime": "Zo", "unknown": "skip", "length": 5}).json()
    assert "skipped 1 prime character the model never saw: 'Z'" in answer["note"]
    assert answer["samples"][0]["prime"] == "o"


SCORE_TEXT = "To be, or not to be\n\nthat is the questïon\nAnd by opposing"


@pytest.mark.parametrize("whole", [False, True], ids=["lines", "whole"])
def test_score_has_the_fields_of_charrnn_score_json(client, checkpoint, tmp_path, whole):
    text_file = write(tmp_path / "text.txt", SCORE_TEXT)
    result = cli("score", text_file, "-c", checkpoint, "--device", "cpu", "--json", "-q",
                 *(["--whole"] if whole else []))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    expected = [json.loads(line) for line in result.stdout.splitlines()]
    response = client.post("/v1/score", json={"text": SCORE_TEXT, "whole": whole})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["rows"] + [answer["total"]] == expected
    assert answer["total"]["unknown"] == 1
    assert "surprisal_edges" not in answer


def test_score_gives_each_characters_surprisal_when_asked(client, checkpoint):
    answer = client.post("/v1/score", json={"text": "To be\nquestïon", "surprisal": True}).json()
    first, second = answer["rows"]
    assert answer["surprisal_edges"] == list(SURPRISAL_EDGES)
    assert len(first["surprisal"]) == len("To be\n")  # the scored newline has one too
    assert len(second["surprisal"]) == len("questïon")
    assert second["surprisal"][5] is None  # ï: unknown, no probability
    assert None not in first["surprisal"] and second["surprisal"].count(None) == 1
    expected = score(load_model(checkpoint, "cpu"), "To be\n").logprobs
    assert first["surprisal"] == pytest.approx([-lp / LN2 for lp in expected.tolist()], abs=1e-4)
    assert sum(first["surprisal"]) * LN2 == pytest.approx(-first["logprob"], abs=1e-3)


def test_score_of_an_empty_text_has_no_rows(client):
    answer = client.post("/v1/score", json={"text": ""}).json()
    assert answer["rows"] == []
    assert answer["total"]["chars"] == 0 and answer["total"]["bits_per_char"] is None


BAD_SAMPLES = {
    "temperature 0": ({"temperature": 0}, 'temperature must be a positive number, got 0.0 (for the most likely character every time, use "greedy": true)'),
    "temperature -1": ({"temperature": -1}, "temperature must be a positive number, got -1.0 (for the most likely character every time, use \"greedy\": true)"),
    "top-p 0": ({"top_p": 0}, "top_p must be in (0, 1], got 0.0"),
    "top-p 1.5": ({"top_p": 1.5}, "top_p must be in (0, 1], got 1.5"),
    "top-k 0": ({"top_k": 0}, "top_k must be at least 1, got 0"),
    "length -1": ({"length": -1}, "length must be >= 0, got -1"),
    "length over the cap": ({"length": 2001}, "length must be at most 2,000 on this server (--max-length)"),
    "num_samples 0": ({"num_samples": 0}, "num_samples must be at least 1, got 0"),
    "num_samples over the cap": ({"num_samples": 5}, "num_samples must be at most 4 on this server (--max-samples)"),
    "seed -1": ({"seed": -1}, "seed must be between 0 and 2**63 - num_samples, got -1"),
    "empty stop": ({"stop": ""}, "stop must not be empty"),
    "unknown policy": ({"unknown": "maybe"}, "unknown must be one of error, skip, got 'maybe'"),
    "unseen prime characters": ({"prime": "Zé"}, "the prime has 2 characters the model never saw: 'Z', 'é'; remove them or pass \"unknown\": \"skip\""),
    "length as a string": ({"length": "5"}, "length: Input should be a valid integer"),
    "greedy as a string": ({"greedy": "yes"}, "greedy: Input should be a valid boolean"),
    "a misspelt field": ({"temprature": 1.0}, "unknown field 'temprature' (see /docs for the fields)"),
    "a list for a body": ([1], "the body must be a JSON object, not list"),
}  # fmt: skip


@pytest.mark.parametrize("body, message", BAD_SAMPLES.values(), ids=BAD_SAMPLES.keys())
def test_bad_sample_request_is_refused_with_one_clear_message(client, body, message):
    response = client.post("/v1/sample", json=body)
    assert response.status_code == 422
    assert response.json() == {"error": message}


BAD_SCORES = {
    "no text": ({}, "text is required"),
    "text not a string": ({"text": 5}, "text: Input should be a valid string"),
    "strict with an unseen character": ({"text": "To bé", "strict": True}, "the text has 1 character the model never saw: 'é' (first on line 1); without \"strict\": true they are skipped and counted as unknown"),
    "empty context": ({"text": "To be", "context": ""}, "context must hold at least one character"),
    "context with an unseen character": ({"text": "To be", "context": "é"}, "the context has 1 character the model never saw: 'é'; choose a context made of the model's characters"),
}  # fmt: skip


@pytest.mark.parametrize("body, message", BAD_SCORES.values(), ids=BAD_SCORES.keys())
def test_bad_score_request_is_refused_with_one_clear_message(client, body, message):
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert response.json() == {"error": message}


BAD_BODIES = {
    "not JSON": ("{bad", "application/json", "the body is not valid JSON (Expecting property name enclosed in double quotes)"),
    "no content type": ('{"length": 5}', None, "send the body as a JSON object, with Content-Type: application/json"),
    "no body": ("", "application/json", "the body is missing: send a JSON object"),
    "NaN temperature": ('{"temperature": NaN}', "application/json", "temperature must be a positive number, got nan"),
}  # fmt: skip


@pytest.mark.parametrize("content, kind, message", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_body_is_refused_with_one_clear_message(client, content, kind, message):
    headers = {"Content-Type": kind} if kind else {}
    response = client.post("/v1/sample", content=content, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"].startswith(message)
    assert "\n" not in response.json()["error"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_request_over_the_size_cap_is_refused_with_413(client, declared):
    body = json.dumps({"text": "To be " * 1000}).encode()
    content = body if declared else iter([body[:3000], body[3000:]])
    response = client.post(
        "/v1/score", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "the request is over 5,000 bytes, this server's limit "
        "(charrnn serve --max-request-bytes)"
    }
    assert client.post("/v1/score", json={"text": "To be " * 100}).status_code == 200


def test_unknown_route_and_method_are_json_errors(client):
    assert (client.get("/v2/nothing").status_code, client.get("/v2/nothing").json()) == (
        404,
        {"error": "Not Found"},
    )
    response = client.get("/v1/sample")
    assert (response.status_code, response.json()) == (405, {"error": "Method Not Allowed"})


def test_a_bug_is_a_json_500_that_names_itself_never_a_traceback(checkpoint, monkeypatch):
    app = create_app(load_model(checkpoint, "cpu"), ServeConfig())

    def broken(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr("charrnn.serve_api.Served.generation", broken)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.post("/v1/sample", json={})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error: RuntimeError: boom (a charrnn bug)"}


def test_a_failure_mid_stream_ends_the_stream_with_an_error_event(client, monkeypatch):
    pieces = Generation.__iter__

    def failing(self):
        for count, piece in enumerate(pieces(self)):
            if count == 2:
                raise RuntimeError("the weights went away")
            yield piece

    monkeypatch.setattr(Generation, "__iter__", failing)
    body = {"length": 500, "seed": 1, "stream": True}
    with client.stream("POST", "/v1/sample", json=body) as response:
        events = list(parse_events(response.iter_lines()))
    assert [name for name, _ in events][-1] == "error"
    assert events[-1][1] == {"error": "internal error: RuntimeError: the weights went away"}
    assert client.get("/healthz").json()["generating"] == 0


def test_page_and_its_files_come_from_the_package_with_no_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        assert f"/static/{name}" in page.text
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
    for path in WEB_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


def test_openapi_page_documents_every_endpoint_with_the_cli_defaults(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/sample", "/v1/score", "/v1/model", "/healthz"} <= set(schema["paths"])
    fields = schema["components"]["schemas"]["SampleRequest"]["properties"]
    defaults = SampleConfig()
    assert fields["length"]["default"] == defaults.length
    assert fields["temperature"]["default"] == defaults.temperature
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "message, expected",
    [
        ("--top-p must be in (0, 1]", "top_p must be in (0, 1]"),
        ("use --greedy)", 'use "greedy": true)'),
        ("or pass --unknown skip", 'or pass "unknown": "skip"'),
        ("--unknown must be one of", "unknown must be one of"),
        ("without --strict they are", 'without "strict": true they are'),
        ("--device cuda was asked for", "--device cuda was asked for"),  # not a request field
    ],
)
def test_api_messages_name_request_fields_not_cli_flags(message, expected):
    assert api_message(message, ["top_p", "greedy", "unknown", "strict"]) == expected


@pytest.mark.parametrize(
    "host, exposed",
    [("127.0.0.1", False), ("127.0.0.2", False), ("localhost", False), ("::1", False),
     ("[::1]", False), ("0.0.0.0", True), ("::", True), ("192.168.1.5", True),
     ("myhost.example", True)],
)  # fmt: skip
def test_a_warning_only_when_bound_beyond_loopback(host, exposed):
    warning = serving.exposure_warning(host)
    assert (warning is not None) == exposed
    if exposed:
        assert host in warning and "--host 127.0.0.1" in warning


def test_serve_without_the_extra_is_one_line_with_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    result = cli("serve")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: charrnn serve needs uvicorn, which is not installed: pip install 'charrnn[serve]'"
    )


@pytest.mark.parametrize(
    "options, message",
    [
        (["--port", "70000"], "--port must be between 0 and 65535, got 70000"),
        (["--max-length", "0"], "--max-length must be at least 1, got 0"),
        (["--max-samples", "0"], "--max-samples must be at least 1, got 0"),
        (["--max-request-bytes", "0"], "--max-request-bytes must be at least 1, got 0"),
    ],
)
def test_serve_bad_option_is_one_line_usage_error(options, message):
    result = cli("serve", *options)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {message}"


def test_serve_on_a_taken_port_is_one_line_error_before_loading(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = cli("serve", "-c", tmp_path / "missing.pt", "--port", str(port))
    finally:
        taken.close()
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "choose another --port" in result.stderr and len(result.stderr.splitlines()) == 1


def test_serve_beyond_loopback_warns_then_serves(checkpoint, monkeypatch):
    served = []

    def fake_listen(host, port):
        return socket.create_server(("127.0.0.1", 0))  # bind nothing beyond loopback in a test

    def fake_run(app, sock, on_shutdown):
        served.append(app)
        sock.close()
        return "SIGTERM"

    monkeypatch.setattr(serving, "listen", fake_listen)
    monkeypatch.setattr(serving, "run_until_stopped", fake_run)
    result = cli("serve", "-c", checkpoint, "--host", "0.0.0.0", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("warning: listening on 0.0.0.0: other machines can reach")
    assert lines[1].startswith(f"serving {checkpoint} (LSTM 2x16) on cpu at http://127.0.0.1:")
    assert lines[2] == "stopped (SIGTERM)"
    assert len(served) == 1


def test_nan_weights_give_null_not_a_500(tmp_path):
    import torch

    loaded = load_model(make_checkpoint(tmp_path / "nan.pt"), "cpu")
    with torch.no_grad():
        loaded.model.head.bias.fill_(math.nan)
    with TestClient(create_app(loaded, ServeConfig())) as test_client:
        response = test_client.post("/v1/score", json={"text": "To be\n"})
    assert response.status_code == 200
    assert response.json()["total"]["bits_per_char"] is None


@pytest.mark.parametrize("path, body", [("/v1/sample", {}), ("/v1/score", {"text": "To be\n"})])
def test_requests_while_the_server_stops_end_with_503(checkpoint, path, body):
    app = create_app(load_model(checkpoint, "cpu"), ServeConfig())
    app.state.served.stop()
    with TestClient(app) as test_client:
        response = test_client.post(path, json=body)
        assert response.status_code == 503
        assert response.json() == {
            "error": "the server is stopping; send the request again when it is back"
        }
        assert test_client.get("/healthz").json()["generating"] == 0


def test_serve_with_a_missing_checkpoint_is_one_line_error(tmp_path):
    result = cli("serve", "-c", tmp_path / "missing.pt", "--port", "0")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()  # then the runs that exist, or how to make one
    assert line.startswith(f"error: checkpoint not found: {tmp_path / 'missing.pt'}")
