"""The page `charrnn serve` shows, driven in a real browser: headless Chromium, steered over the
DevTools protocol. A seeded sample streams into the prime box in pieces and is the text the
library makes; the score box colours the text by surprisal; screenshots show both.

Runs where Chromium is installed (CI installs Debian's package in .ci/run); skipped elsewhere.
Nothing is downloaded: the browser is the system's, the page is the package's.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from conftest import chromium_binary, make_checkpoint
from PIL import Image
from serve_support import LiveServer, wait_for

from charrnn.checkpoint import load_model
from charrnn.config import SampleConfig
from charrnn.sampling import Generation

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a container's small /dev/shm must not crash the renderer
    "--window-size=1200,1300",
    "--remote-debugging-port=0",  # the port it takes is written to DevToolsActivePort
]


class Browser:
    """Headless Chromium showing `url`, with one DevTools connection to its page."""

    def __init__(self, url: str, profile: Path):
        binary = chromium_binary()
        if binary is None:
            pytest.fail("Chromium is not installed (CI installs it: apt-get install chromium)")
        self.log = (profile.parent / "chromium.log").open("w")
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        active = profile / "DevToolsActivePort"
        wait_for(lambda: active.is_file() and active.read_text().count("\n") >= 1, 60, "Chromium")
        port = active.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            pages = [target for target in json.load(answer) if target["type"] == "page"]
        self.socket = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Image.Image:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return Image.open(io.BytesIO(data)).convert("RGB")

    def box(self, element_id: str) -> tuple[int, int, int, int]:
        """The element's rectangle in screenshot pixels (left, top, right, bottom)."""
        rect = self.evaluate(
            f"(() => {{ const r = document.getElementById('{element_id}').getBoundingClientRect();"
            " const s = window.devicePixelRatio;"
            " return [r.left * s, r.top * s, r.right * s, r.bottom * s]; })()"
        )
        return tuple(round(value) for value in rect)

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def pixels(image: Image.Image, box: tuple[int, int, int, int]) -> Iterator[tuple[int, ...]]:
    """(r, g, b) of each pixel in a box of an RGB image."""
    data = image.crop(box).tobytes()
    return zip(data[0::3], data[1::3], data[2::3], strict=True)


def dark_pixels(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Pixels of text (dark grey to black) in a box of the screenshot."""
    return sum(1 for r, g, b in pixels(image, box) if r + g + b < 300)


def coloured_pixels(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Pixels of a strong colour (the heatmap's backgrounds), not white, grey or black."""
    return sum(1 for r, g, b in pixels(image, box) if max(r, g, b) - min(r, g, b) > 80)


@pytest.fixture
def browser_on_page(tmp_path: Path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    with LiveServer(checkpoint) as server:
        browser = Browser(server.url + "/", tmp_path / "profile")
        try:
            described = "(document.getElementById('model') || {}).textContent || ''"
            wait_for(lambda: "LSTM" in browser.evaluate(described), 60, "the page to load")
            yield browser, checkpoint
        finally:
            browser.close()


def test_page_streams_a_seeded_sample_and_colours_a_score(browser_on_page, tmp_path):
    browser, checkpoint = browser_on_page
    before = browser.screenshot(tmp_path / "before.png")
    output_box = browser.box("output")
    assert dark_pixels(before, output_box) < 50  # the prime box is empty

    browser.evaluate(
        "(() => { const output = document.getElementById('output'); window.appends = 0;"
        " new MutationObserver((changes) => { window.appends += changes.length; })"
        ".observe(output, { childList: true });"
        " document.getElementById('prime').value = 'To be';"
        " document.getElementById('seed').value = '7';"
        " document.getElementById('length').value = '400';"
        " document.getElementById('generate').click(); })()"
    )
    status = "document.getElementById('sample-status').textContent"
    wait_for(lambda: "characters" in browser.evaluate(status), 60, "the sample to finish")
    shown = browser.evaluate("document.getElementById('output').textContent")
    loaded = load_model(checkpoint, "cpu")
    config = SampleConfig(prime="To be", length=400, seed=7, temperature=0.8)
    expected = Generation(loaded.model, loaded.vocab, config).run()[0].text
    assert shown == "To be" + expected
    assert browser.evaluate("window.appends") > 3  # it came in pieces, as it was made
    assert "400 characters, seed 7" in browser.evaluate(status)
    after = browser.screenshot(tmp_path / "sample.png")
    assert dark_pixels(after, browser.box("output")) > 20 * dark_pixels(before, output_box) + 500

    text = "To be, or not to be\\nthat is the questïon"
    browser.evaluate(
        f"(() => {{ document.getElementById('score-text').value = '{text}';"
        " document.getElementById('score').click(); })()"
    )
    score_status = "document.getElementById('score-status').textContent"
    wait_for(lambda: "bits/char" in browser.evaluate(score_status), 60, "the score")
    heatmap = browser.evaluate(
        "Array.from(document.querySelectorAll('#heatmap span'), s => [s.className, s.textContent])"
    )
    assert "".join(piece for _, piece in heatmap) == "To be, or not to be\u21b5that is the questïon"
    classes = {name for name, _ in heatmap}
    assert classes <= {"s0", "s1", "s2", "s3", "s4", "s5", "unknown"} and "unknown" in classes
    assert ["unknown", "ï"] in heatmap
    scored = browser.screenshot(tmp_path / "score.png")
    assert coloured_pixels(scored, browser.box("heatmap")) > 1000
