"""The gpuvec command line."""

from __future__ import annotations

import subprocess
import sys

from gpuvec.cli import main


def test_info_prints_backend_and_reason(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend:" in out and "reason:" in out and "numpy:" in out


def test_python_dash_m_gpuvec_runs_the_same_cli():
    r = subprocess.run([sys.executable, "-m", "gpuvec", "info"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "backend:" in r.stdout


def test_unknown_command_is_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_demo_checks_every_seed_answer(capsys):
    assert main(["demo", "--size", "200"]) == 0
    out = capsys.readouterr().out
    for topic in ("rays", "rotation", "normal", "mixture"):
        assert topic in out.lower()
    assert "WRONG" not in out
