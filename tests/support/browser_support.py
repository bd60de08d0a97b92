"""A real headless Chromium for page tests, without extra Python packages.

With ``chromedriver`` beside Chromium the page is driven through the W3C WebDriver HTTP
protocol (urllib only): wait for a JavaScript condition, set localStorage, take a
screenshot. Without it, Chromium's own ``--dump-dom`` and ``--screenshot`` are used with a
virtual time budget.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html import unescape
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,900",
]
VIRTUAL_TIME_MS = 15000


def chromium_path() -> str | None:
    """Debian's Chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromedriver_path() -> str | None:
    return shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebDriver:
    """A headless Chromium session driven by chromedriver over HTTP."""

    def __init__(self, chromium: str, chromedriver: str, profile: Path) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [chromedriver, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.2)
        options = {"binary": chromium, "args": CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]}
        capabilities = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.session = self._call("POST", "/session", capabilities)["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["value"]

    def open(self, url: str) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def script(self, source: str):
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": source, "args": []})

    def wait_for(self, condition_js: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.script(condition_js):
                return True
            time.sleep(0.5)
        return False

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot")))
        return path

    def close(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            self.process.terminate()
            self.process.wait(10)


@dataclass
class Page:
    """What a page showed: its DOM as HTML and its visible text."""

    html: str
    text: str


def _text_of(html: str) -> str:
    without_styles = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", without_styles))).strip()


def capture(url: str, png: Path, ready_js: str, profile: Path, local_storage: dict[str, str] | None = None,
            timeout: float = 60.0) -> Page:
    """Open ``url``, wait until ``ready_js`` is true (WebDriver) or the virtual time budget has
    passed (plain Chromium), save a screenshot to ``png``, return what the page showed."""
    chromium, driver_path = chromium_path(), chromedriver_path()
    if chromium is None:
        raise RuntimeError("chromium is not installed")
    if driver_path is not None:
        driver = WebDriver(chromium, driver_path, profile)
        try:
            if local_storage:
                # set it on a plain page of the same origin, so the page under test loads once
                parts = urllib.parse.urlsplit(url)
                driver.open(f"{parts.scheme}://{parts.netloc}/favicon.ico")
                for key, value in local_storage.items():
                    driver.script(f"window.localStorage.setItem({json.dumps(key)}, {json.dumps(value)}); return true;")
            driver.open(url)
            driver.wait_for(ready_js, timeout)
            time.sleep(1.0)  # let thumbnails finish painting
            driver.screenshot(png)
            html = driver.script("return document.documentElement.outerHTML;")
            return Page(html, re.sub(r"\s+", " ", driver.script("return document.body.innerText;")))
        finally:
            driver.close()
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={VIRTUAL_TIME_MS}"]
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=timeout + 30)
    subprocess.run(base + [f"--screenshot={png}", url], capture_output=True, timeout=timeout + 30)
    return Page(dom.stdout, _text_of(dom.stdout))
