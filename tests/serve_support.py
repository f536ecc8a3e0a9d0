"""Helpers for the `charrnn serve` tests: a real server on a loopback port in a thread, plain
HTTP requests (the standard library's client, so a test controls the connection), and reading
server-sent events."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from charrnn.checkpoint import load_model
from charrnn.config import ServeConfig
from charrnn.serve_api import create_app
from charrnn.serving import listen, make_server, url_of


class LiveServer:
    """`charrnn serve`'s app on a free loopback port, served by uvicorn in a thread."""

    def __init__(self, checkpoint: Path, **limits: int):
        self.app = create_app(load_model(checkpoint, "cpu"), ServeConfig(port=0, **limits))
        self.sock = listen("127.0.0.1", 0)
        self.url = url_of(self.sock)
        self.server = make_server(self.app, self.app.state.served.stop, log=False)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    def connect(self, timeout: float = 30) -> http.client.HTTPConnection:
        where = urlsplit(self.url)
        return http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)

    def get(self, path: str) -> Any:
        return request(self.url, "GET", path)[1]

    def generating(self) -> int:
        return self.get("/healthz")["generating"]


def request(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON) of one request on a fresh connection."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(event name, decoded data) of server-sent events given line by line."""
    name, data = "message", ""
    for line in lines:
        line = line.rstrip("\r\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data += line.removeprefix("data: ")
        elif not line and data:
            yield name, json.loads(data)
            name, data = "message", ""


def response_lines(response: http.client.HTTPResponse) -> Iterator[str]:
    while line := response.readline():
        yield line.decode("utf-8")


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {seconds} s for {what}"
        time.sleep(0.05)
