"""Test session set-up: every library's settings, caches and database go to a temp folder."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="smearscope-tests-"))
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)
for _name, _value in {
    "SMEARSCOPE_HOME": _SESSION_HOME,
    "YOLO_CONFIG_DIR": _SESSION_HOME / "ultralytics",
    "FIFTYONE_DATABASE_DIR": _SESSION_HOME / "fiftyone-db",
    "FIFTYONE_CONFIG_PATH": _SESSION_HOME / "fiftyone-config.json",
    "MPLCONFIGDIR": _SESSION_HOME / "matplotlib",
    "XDG_CACHE_HOME": _SESSION_HOME / "cache",
}.items():
    os.environ[_name] = str(_value)
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ.pop("FIFTYONE_DATABASE_URI", None)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip with a reason when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only CI and developer machines have it)")
    return SHARED_DATA


class OutsideConnection(RuntimeError):
    """Raised when code under test tries to reach an address outside this machine."""


def _is_loopback(address) -> bool:
    import ipaddress

    if not isinstance(address, tuple):
        return True  # AF_UNIX paths
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name that is not localhost


@pytest.fixture
def no_network(monkeypatch):
    """Fail any socket connection outside loopback; yields the list of attempts made."""
    import socket

    attempts: list = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(real):
        def connect(self, address):
            if not _is_loopback(address):
                attempts.append(address)
                raise OutsideConnection(f"blocked connection to {address!r}")
            return real(self, address)
        return connect

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost", "127.0.0.1", "::1") and not _is_loopback((host, 0)):
            attempts.append((host, "dns"))
            raise OutsideConnection(f"blocked name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", guarded(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield attempts


@pytest.fixture(scope="session")
def fiftyone_db():
    """The ``fiftyone`` module on this session's temporary database (mongod starts once)."""
    from smearscope.datasets.runtime import prepare_fiftyone

    database_dir = prepare_fiftyone()
    if database_dir != _SESSION_HOME / "fiftyone-db":
        raise RuntimeError(f"FiftyOne would use {database_dir}, not this session's temporary database")
    import fiftyone as fo

    fo.list_datasets()  # start and connect now, once
    return fo


@pytest.fixture
def fiftyone_name(fiftyone_db, request):
    """A dataset name unique to this test; the dataset is deleted afterwards."""
    import uuid

    name = f"test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
    yield name
    if fiftyone_db.dataset_exists(name):
        fiftyone_db.delete_dataset(name)
