"""The real `charrnn serve` process: it reports its address, answers, and stops cleanly on
Ctrl-C or SIGTERM (exit 0, one line, no traceback), ending a stream still open."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import make_checkpoint
from serve_support import parse_events, request, response_lines

STOPPING = "the server is stopping; send the request again when it is back"


def start(checkpoint: Path) -> tuple[subprocess.Popen, str, list[str], threading.Thread]:
    """`charrnn serve` on a free port; its URL once it says it serves, and its stderr lines."""
    process = subprocess.Popen(
        [sys.executable, "-m", "charrnn", "serve", "-c", str(checkpoint), "--port", "0",
         "--device", "cpu", "--max-length", "5000000"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in process.stderr:
            lines.append(line)
            if line.startswith("serving "):
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not ready.wait(120) or process.poll() is not None:
        process.kill()
        pytest.fail(f"charrnn serve did not start: {''.join(lines)}")
    url = re.search(r"http://127\.0\.0\.1:\d+", lines[-1])[0]
    return process, url, lines, reader


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_answers_then_stops_cleanly_on_a_signal(tmp_path, signum):
    process, url, lines, reader = start(make_checkpoint(tmp_path / "tiny.pt"))
    try:
        assert request(url, "GET", "/healthz") == (200, {"status": "ok", "generating": 0})
        status, answer = request(url, "POST", "/v1/sample", {"seed": 1, "length": 50})
        assert status == 200 and answer["samples"][0]["chars"] == 50
        where = urlsplit(url)
        stream = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        body = json.dumps({"length": 5_000_000, "stream": True})
        stream.request("POST", "/v1/sample", body, {"Content-Type": "application/json"})
        events = parse_events(response_lines(stream.getresponse()))
        assert [next(events)[0], next(events)[0]] == ["start", "piece"]  # a stream is open
        process.send_signal(signum)
        rest = list(events)  # the stream ends at once, saying why, instead of being cut
        assert rest[-1] == ("error", {"error": STOPPING})
        process.wait(timeout=30)
        assert process.returncode == 0
        stream.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=30)
        process.stderr.close()
    stderr = "".join(lines)
    assert "Traceback" not in stderr and "warning" not in stderr.lower(), stderr
    assert lines[0].startswith("serving ") and "(LSTM 2x16) on cpu at http://127.0.0.1:" in lines[0]
    assert lines[-1] == f"stopped ({signal.Signals(signum).name})\n", stderr
