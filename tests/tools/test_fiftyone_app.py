"""``smearscope app``: the FiftyOne App served as a child process, seen in a real browser,
stopped by Ctrl-C or SIGTERM with nothing left running."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from browser_support import capture, chromium_path
from fiftyone_support import make_detection_set

from smearscope.datasets.evaluation import evaluate_dataset
from smearscope.datasets.fiftyone_bridge import add_predictions, import_records, open_dataset
from smearscope.datasets.fiftyone_views import view_slug

pytestmark = pytest.mark.slow
START_TIMEOUT_S = 150
LOOKER = "_looker_"  # class-name prefix of a sample tile in the App's grid
POPUP_SEEN = {"fiftyone-enterprise-tooltip-seen": "true"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_pids(port: int) -> list[int]:
    """Processes running the FiftyOne App server on ``port``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"fiftyone.server.main" in args and str(port).encode() in args:
                found.append(int(entry.name))
    return found


class AppCommand:
    """``smearscope app`` in its own session, as a terminal would run it."""

    def __init__(self, dataset: str, port: int, sigint_ignored: bool = False) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smearscope.tools.cli", "app", "--dataset", dataset, "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
            # as a parent that ignores SIGINT starts it (the child inherits the ignored signal)
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        self.kill()
        raise AssertionError(f"{text!r} not printed within {timeout} s; output:\n" + "\n".join(self.output))

    def url_of(self, prefix: str) -> str:
        return next(line.split(": ", 1)[1] for line in self.output if line.strip().startswith(prefix))

    def stop(self, signum: int) -> int:
        os.killpg(self.process.pid, signum)
        try:
            code = self.process.wait(120)  # generous: a loaded machine stops the server slowly
        except subprocess.TimeoutExpired:
            self.kill()
            time.sleep(0.5)
            self._drain()
            raise AssertionError("smearscope app did not exit within 120 s; output:\n" + "\n".join(self.output)) from None
        time.sleep(0.5)
        self._drain()
        return code

    def _drain(self) -> None:
        while not self.lines.empty():
            self.output.append(self.lines.get())

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in _server_pids(self.port):
            os.kill(pid, signal.SIGKILL)


def _assert_nothing_left(port: int) -> None:
    deadline = time.monotonic() + 15
    while _server_pids(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _server_pids(port) == [], f"App server still running on port {port}"
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # closed connections may linger in TIME_WAIT
        probe.bind(("127.0.0.1", port))  # nothing listens on the port any more


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["started-plainly", "started-with-sigint-ignored"])
def test_app_stops_on_ctrl_c(fiftyone_db, fiftyone_name, tmp_path: Path, sigint_ignored: bool) -> None:
    data = make_detection_set(tmp_path, images_per_domain=1, seed=6)
    import_records(data.truth, fiftyone_name)
    port = _free_port()
    app = AppCommand(fiftyone_name, port, sigint_ignored)
    try:
        app.wait_for("Press Ctrl-C to stop.", START_TIMEOUT_S)
        url = app.url_of("FiftyOne App")
        assert url == f"http://127.0.0.1:{port}/datasets/{urllib.parse.quote(fiftyone_name, safe='')}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        assert len(_server_pids(port)) == 1
        assert app.stop(signal.SIGINT) == 0
    finally:
        app.kill()
    assert "FiftyOne App stopped." in app.output
    _assert_nothing_left(port)


def _save_artifact(path: Path) -> None:
    folder = os.environ.get("SMEARSCOPE_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(folder) / path.name)


@pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (make test installs it: make browser)")
def test_app_in_a_real_browser_shows_the_grid_and_a_saved_view(fiftyone_db, fiftyone_name, tmp_path: Path) -> None:
    data = make_detection_set(tmp_path / "images", images_per_domain=4, seed=7)
    import_records(data.truth, fiftyone_name)
    add_predictions(fiftyone_name, data.predictions, extras=data.extras)
    evaluate_dataset(fiftyone_name)  # eval key "eval", the one `smearscope app` uses by default
    port = _free_port()
    app = AppCommand(fiftyone_name, port)
    try:
        app.wait_for("Press Ctrl-C to stop.", START_TIMEOUT_S)
        view_name = "eval attribute disagreements"
        view_url = app.url_of(f"saved view {view_name!r}")
        assert view_url.endswith(f"?view={view_slug(view_name)}")

        samples = len(data.truth)
        grid_png = tmp_path / "fiftyone_app.png"
        grid = capture(app.url_of("FiftyOne App"), grid_png,
                       f'return document.querySelectorAll("[class^={LOOKER}]").length >= {samples}',
                       tmp_path / "profile-grid", POPUP_SEEN)
        _save_artifact(grid_png)
        assert f"{samples} samples" in grid.text
        assert grid.html.count(f'class="{LOOKER}') >= 1
        assert grid_png.stat().st_size > 20_000

        dataset = open_dataset(fiftyone_name)
        dataset.reload()  # the views were saved by the command's process
        in_view = len(dataset.load_saved_view(view_name))
        view_png = tmp_path / "fiftyone_app_saved_view.png"
        page = capture(view_url, view_png,
                       f'return document.body.innerText.includes("{view_name}") && '
                       f'document.querySelectorAll("[class^={LOOKER}]").length >= {in_view}',
                       tmp_path / "profile-view", POPUP_SEEN)
        _save_artifact(view_png)
        assert 0 < in_view < samples
        assert view_name in page.text
        assert f"{in_view} samples" in page.text
        assert app.stop(signal.SIGTERM) == 0
    finally:
        app.kill()
    _assert_nothing_left(port)
