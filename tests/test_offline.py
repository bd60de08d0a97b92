"""Offline by construction: representative commands make no connection outside loopback."""

import importlib
import sys

import pytest

from smearscope.tools.cli import COMMAND_MODULES, build_parser, main


def test_guard_blocks_outside_addresses(no_network):
    import socket

    with pytest.raises(Exception, match="blocked"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    assert no_network


def test_every_subcommand_has_help(no_network, capsys):
    parser = build_parser()
    names = [a for a in parser._subparsers._group_actions[0].choices]  # noqa: SLF001 (argparse has no public listing)
    assert names, "no subcommands registered"
    for name in names:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: smearscope " + name in capsys.readouterr().out
    assert no_network == []


def test_importing_the_library_is_light_and_has_no_side_effects(tmp_path):
    """Importing every module, including each CLI command, loads no heavy library and writes nothing."""
    import json
    import os
    import subprocess

    modules = ["smearscope.datasets", "smearscope.detect", "smearscope.attributes", "smearscope.tools.cli"]
    modules += [f"smearscope.tools.{name}" for name in COMMAND_MODULES]
    code = (
        "import importlib, json, os, sys\n"
        f"before = dict(os.environ)\nfor m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps({'env_changed': dict(os.environ) != before,"
        " 'heavy': sorted({'fiftyone', 'ultralytics', 'onnxruntime', 'torch'} & set(sys.modules))}))"
    )
    env = dict(os.environ, HOME=str(tmp_path), SMEARSCOPE_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"env_changed": False, "heavy": []}
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "importing wrote files"
