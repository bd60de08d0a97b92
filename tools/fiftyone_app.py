"""Serve the FiftyOne App as a child process that stops cleanly.

The App runs as ``python -m fiftyone.server.main --port P --address A`` in its own session
(Ctrl-C in a terminal reaches only this process, which then ends the server) and, on
Linux, dies with its parent even if the parent is killed. ``fo.launch_app`` is avoided:
it leaves server processes behind. The database process (mongod) exits by itself when
its last client has gone.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from smearscope.datasets.runtime import prepare_fiftyone, smearscope_home

DEFAULT_PORT = 5151
DEFAULT_ADDRESS = "127.0.0.1"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.3
PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a function for the child (run before exec) that asks the kernel to send it
    SIGTERM when its parent dies; libc is loaded here, in the parent, not in the child."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def dataset_url(base_url: str, dataset: str, view_slug: str | None = None) -> str:
    """The App's address of a dataset, optionally opened on a saved view (by slug)."""
    url = f"{base_url}/datasets/{urllib.parse.quote(dataset, safe='')}"
    return f"{url}?view={urllib.parse.quote(view_slug, safe='')}" if view_slug else url


@dataclass
class AppServer:
    """A running App server process."""

    process: subprocess.Popen
    url: str
    log_path: Path
    log: IO[bytes]

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server wrote."""
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout``); return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.log.close()
        return self.process.returncode

    def __enter__(self) -> "AppServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_ready(server: AppServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.running():
            raise RuntimeError(f"the FiftyOne App server exited with code {server.stop()}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(POLL_S)
    raise RuntimeError(f"the FiftyOne App server did not answer at {server.url} within {timeout:.0f} s:\n{server.log_tail()}")


def start_app(
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    timeout: float = START_TIMEOUT_S,
    log_path: str | Path | None = None,
) -> AppServer:
    """Start the App server and return once it answers HTTP; ``ValueError`` if the port is
    taken, ``RuntimeError`` (with the server's last log lines) if it fails to come up."""
    prepare_fiftyone()
    if not _port_free(address, port):
        raise ValueError(f"port {port} on {address} is already in use; choose another with --port")
    log_path = Path(log_path) if log_path else smearscope_home() / "fiftyone" / f"app-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    command = [sys.executable, "-m", "fiftyone.server.main", "--port", str(port), "--address", address]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_parent_death_signal(),
    )
    server = AppServer(process=process, url=f"http://{address}:{port}", log_path=log_path, log=log)
    try:
        _wait_ready(server, timeout)
    except BaseException:  # Ctrl-C while waiting included: never leave the server behind
        server.stop()
        raise
    return server


class _Terminated(Exception):
    """Raised by the SIGTERM handler to leave the serving loop."""


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    """SIGTERM raises ``_Terminated`` and SIGINT ``KeyboardInterrupt``, also when this process
    was started with SIGINT ignored (a parent that ignores it passes that on)."""
    def handler(signum: int, frame: object) -> None:
        raise _Terminated()

    previous_term = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def serve_until_stopped(server: AppServer, announce: str) -> int:
    """Print ``announce``, wait until Ctrl-C, SIGTERM or the server ends; stop it; exit code."""
    print(announce, flush=True)
    try:
        with _signals_stop():
            while server.running():
                time.sleep(POLL_S)
    except (KeyboardInterrupt, _Terminated):
        server.stop()
        print("FiftyOne App stopped.", flush=True)
        return 0
    code = server.stop()
    print(f"the FiftyOne App server exited with code {code}:\n{server.log_tail()}", file=sys.stderr)
    return code or 1
