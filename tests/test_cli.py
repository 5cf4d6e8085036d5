"""The gpuvec command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


def test_bench_quick_writes_json_with_expected_cases(tmp_path, capsys):
    import json

    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--only", "rays,rotations", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "reference" in out and "gpuvec [numpy]" in out
    data = json.loads(path.read_text())
    groups = {c["group"] for c in data["cases"]}
    assert {"rays 64x64 num=5", "rays 128x128 num=50", "is_rotation 20000 3x3"} <= groups
    for case in data["cases"]:
        assert case["median_s"] > 0
        assert case["reference"] or case["speedup_vs_reference"] > 0
    assert {c["algorithm"] for c in data["cases"]} == {"rays", "rotations"}


def test_bench_unknown_algorithm_is_an_error(capsys):
    assert main(["bench", "--quick", "--only", "fft"]) == 2
    assert "algorithm must be one of" in capsys.readouterr().err


def test_bench_plot_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib.pyplot")
    path = tmp_path / "ratios.png"
    assert main(["bench", "--quick", "--only", "random", "--plot", str(path)]) == 0, capsys.readouterr().err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ray_picture_example_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib.pyplot")
    import pathlib

    script = pathlib.Path(__file__).parents[1] / "examples" / "ray_picture.py"
    out = tmp_path / "rays.png"
    r = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, cwd=script.parents[1])
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
