"""The gpuvec command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from gpuvec._core import backend
from gpuvec.tools import bench, bench_grid, demo
from gpuvec.tools.cli import main

NO_GPU = not backend._probe_cupy().usable
needs_no_gpu = pytest.mark.skipif(not NO_GPU, reason="a GPU is present: this checks the error without one")


def run_cli(*args: str, missing: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """``python -m gpuvec ARGS`` in a fresh process with only the given GPUVEC_* settings.

    ``missing`` modules are made unimportable (``sys.modules[name] = None``), as on a core-only install.
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GPUVEC_")}
    environ.update(env)
    if missing:
        code = f"""
            import sys
            for name in {missing!r}:
                sys.modules[name] = None
            from gpuvec.tools.cli import main
            sys.exit(main(sys.argv[1:]))
            """
        cmd = [sys.executable, "-c", textwrap.dedent(code), *args]
    else:
        cmd = [sys.executable, "-m", "gpuvec", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=environ)


def assert_one_line_error(err: str, prefix: str, *fragments: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def fresh_default(monkeypatch):
    """The default backend as a fresh process would have it: GPUVEC_BACKEND not read yet."""
    for name in ("GPUVEC_BACKEND", "GPUVEC_REQUIRE_GPU", "GPUVEC_JIT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(backend, "_default", backend._DefaultBackend())
    return monkeypatch


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
    assert_one_line_error(
        capsys.readouterr().err,
        "gpuvec bench: error: argument --only: ",
        "'fft'",
        "rays, rotations, random, mixture, dask",
    )


def test_bench_plot_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib.pyplot")
    path = tmp_path / "ratios.png"
    assert main(["bench", "--quick", "--only", "random", "--plot", str(path)]) == 0, capsys.readouterr().err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ray_picture_example_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib.pyplot")
    import pathlib

    script = pathlib.Path(__file__).parents[2] / "examples" / "ray_picture.py"
    out = tmp_path / "rays.png"
    r = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, cwd=script.parents[1])
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- settings: one line, exit 2

BAD_SETTINGS = [
    pytest.param(
        {"GPUVEC_BACKEND": "bogus"},
        ["GPUVEC_BACKEND must be one of 'auto', 'numpy', 'cupy'", "'bogus'"],
        id="backend-bogus",
    ),
    pytest.param(
        {"GPUVEC_BACKEND": "cupy"}, ["GPUVEC_BACKEND='cupy' asks for cupy, but"], id="backend-cupy", marks=needs_no_gpu
    ),
    pytest.param(
        {"GPUVEC_REQUIRE_GPU": "1"}, ["GPUVEC_REQUIRE_GPU=1 forbids falling back"], id="require-gpu", marks=needs_no_gpu
    ),
    pytest.param(
        {"GPUVEC_REQUIRE_GPU": "maybe"}, ["GPUVEC_REQUIRE_GPU must be one of", "'maybe'"], id="require-gpu-maybe"
    ),
    pytest.param({"GPUVEC_JIT": "fast"}, ["GPUVEC_JIT must be one of", "'fast'"], id="jit-fast"),
]


@pytest.mark.parametrize(
    "argv", [["info"], ["demo", "--size", "50"], ["bench", "--quick", "--only", "rotations"]], ids=lambda a: a[0]
)
@pytest.mark.parametrize(("env", "fragments"), BAD_SETTINGS)
def test_bad_setting_is_one_line_before_any_work(fresh_default, capsys, argv, env, fragments):
    for name, value in env.items():
        fresh_default.setenv(name, value)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing printed, nothing run
    assert_one_line_error(err, "gpuvec: error: ", *fragments)


@pytest.mark.parametrize(("env", "fragments"), BAD_SETTINGS)
def test_bad_setting_from_python_dash_m_is_one_line(env, fragments):
    r = run_cli("info", **env)  # a fresh process: import gpuvec itself must not raise
    assert r.returncode == 2 and r.stdout == ""
    assert_one_line_error(r.stderr, "gpuvec: error: ", *fragments)


@needs_no_gpu
def test_console_script_reports_missing_gpu_in_one_line():
    script = shutil.which("gpuvec", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the gpuvec console script is not installed in this environment")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GPUVEC_")}
    r = subprocess.run([script, "info"], capture_output=True, text=True, env={**environ, "GPUVEC_BACKEND": "cupy"})
    assert r.returncode == 2
    assert_one_line_error(r.stderr, "gpuvec: error: ", "asks for cupy")


@pytest.mark.parametrize("value", ["0", "false", "OFF", "no"])
def test_info_says_compiled_paths_are_off(fresh_default, capsys, value):
    fresh_default.setenv("GPUVEC_JIT", value)
    assert main(["info"]) == 0
    assert f"compiled: off (GPUVEC_JIT={value!r})" in capsys.readouterr().out


@pytest.mark.parametrize("value", [None, "1", "on", "yes"])
def test_info_says_compiled_paths_are_on(fresh_default, capsys, value):
    if value is not None:
        fresh_default.setenv("GPUVEC_JIT", value)
    assert main(["info"]) == 0
    assert "compiled: on" in capsys.readouterr().out


def test_info_without_numba_names_the_extra(fresh_default, capsys):
    fresh_default.setitem(sys.modules, "numba", None)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "compiled: on" in out and "numba is not installed" in out


# --------------------------------------------------------------------------- arguments: checked while parsing


@pytest.mark.parametrize("size", ["0", "-3", "abc", "1.5", "", "7328", "1000000000"])
def test_demo_bad_size_is_one_line_before_anything_prints(capsys, size):
    assert main(["demo", "--size", size]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line_error(
        err,
        "gpuvec demo: error: argument --size: ",
        "must be an integer from 1 to 7327",
        repr(size) if not size.lstrip("-").isdigit() else size,
    )


@pytest.mark.parametrize(
    ("size", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (7328, ValueError),
        ("5", TypeError),
        (5.0, TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_demo_run_checks_size_first(capsys, size, error):
    with pytest.raises(error, match="size must be an integer from 1 to 7327"):
        demo.run(size=size)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("size", [1, 2, 7327])
def test_demo_size_bounds_are_accepted(size):
    demo.check_size(size)


@pytest.mark.parametrize("only", [",", " , ", ",,,", ""])
def test_bench_only_selecting_nothing_is_an_error_listing_the_names(capsys, only):
    assert main(["bench", "--quick", "--only", only]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "[1/" not in err
    assert_one_line_error(
        err, "gpuvec bench: error: argument --only: ", "selects no algorithm", "rays, rotations, random, mixture, dask"
    )


@pytest.mark.parametrize("only", ["rays,fft", "RAYS", "rays;mixture", "mixture,,gmm"])
def test_bench_only_unknown_names_are_named(capsys, only):
    assert main(["bench", "--quick", "--only", only]) == 2
    assert_one_line_error(
        capsys.readouterr().err,
        "gpuvec bench: error: argument --only: ",
        "got unknown",
        "rays, rotations, random, mixture, dask",
    )


def test_check_algorithms_strips_and_drops_repeats():
    assert bench.check_algorithms([" rotations", "rays", "rotations ", ""]) == ["rotations", "rays"]
    with pytest.raises(ValueError, match="algorithms selects no algorithm"):
        bench.cases(quick=True, algorithms=[])
    with pytest.raises(TypeError, match="algorithms must be a list of names.*got the str 'rays'"):
        bench.cases(quick=True, algorithms="rays")


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_bench_output_in_a_missing_folder_fails_before_running(tmp_path, capsys, option):
    target = tmp_path / "missing" / "dir" / "x.png"
    assert main(["bench", "--quick", "--only", "rotations", option, str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "[1/" not in err
    assert_one_line_error(
        err, f"gpuvec bench: error: argument {option}: ", "does not exist", f"mkdir -p {target.parent}"
    )


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_bench_output_path_that_is_a_folder_or_under_a_file_fails_before_running(tmp_path, capsys, option):
    assert main(["bench", "--quick", option, str(tmp_path)]) == 2
    assert_one_line_error(
        capsys.readouterr().err, "gpuvec bench: error: ", "must be a file path; got the folder", "add a file name"
    )
    afile = tmp_path / "file"
    afile.write_text("")
    assert main(["bench", "--quick", option, str(afile / "x.png")]) == 2
    assert_one_line_error(capsys.readouterr().err, "gpuvec bench: error: ", "is a file, not a folder")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_bench_output_in_a_read_only_folder_fails_before_running(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main(["bench", "--quick", "--json", str(folder / "x.json")]) == 2
    finally:
        folder.chmod(0o700)
    assert_one_line_error(capsys.readouterr().err, "gpuvec bench: error: argument --json: ", "cannot write")


@pytest.mark.skipif(not os.path.isfile("/proc/version"), reason="needs Linux's /proc")
def test_bench_json_into_proc_fails_before_running_even_for_root(capsys, monkeypatch):
    """/proc/version passes every permission check for root (and open(..., 'w') too); only a write fails. The
    check creates a file in the folder for real, so the error comes before the first case, not after all."""
    monkeypatch.setattr(bench, "run_cases", lambda *a, **k: pytest.fail("a case ran before the check"))
    assert main(["bench", "--quick", "--only", "rotations", "--json", "/proc/version"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "[1/" not in err
    # root: no file can be created in /proc; any other user: the permission bits already say no
    assert_one_line_error(err, "gpuvec bench: error: argument --json: must be a writable path; got '/proc/version'")
    with pytest.raises(ValueError, match="json_path must be a writable path; got '/proc/version'"):
        bench.main(quick=True, json_path="/proc/version")
    if os.geteuid() == 0:
        assert "no file can be created in its folder '/proc'" in err


@pytest.mark.parametrize("target", ["/proc/version", "missing/x.json", "."], ids=["proc", "missing-folder", "folder"])
def test_bench_json_unwritable_from_python_dash_m_is_one_line_and_runs_nothing(tmp_path, target):
    """``python -m gpuvec bench --json`` into a place that cannot be written: status 2, one line, no case."""
    if target.startswith("/proc") and not os.path.isfile(target):
        pytest.skip("needs Linux's /proc")
    path = target if target.startswith("/") else str(tmp_path / target)
    r = run_cli("bench", "--quick", "--json", path)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout)
    assert "[1/" not in r.stderr
    assert_one_line_error(r.stderr, "gpuvec bench: error: argument --json: ")


def test_bench_plot_format_is_checked_before_running(tmp_path, capsys):
    pytest.importorskip("matplotlib.pyplot")
    assert main(["bench", "--quick", "--plot", str(tmp_path / "ratios.xyz")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "[1/" not in err
    assert_one_line_error(
        err, "gpuvec bench: error: argument --plot: ", "format matplotlib writes", "png", "ratios.xyz"
    )


def test_bench_plot_without_matplotlib_fails_before_running(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["bench", "--quick", "--only", "rotations", "--plot", str(tmp_path / "r.png")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "[1/" not in err
    assert_one_line_error(
        err, "gpuvec bench: error: argument --plot: ", "needs matplotlib", "pip install 'gpuvec[plot]'"
    )


def test_bench_main_checks_everything_before_running(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "run_cases", lambda *a, **k: pytest.fail("ran before checking"))
    with pytest.raises(ValueError, match="json_path must be a path in an existing folder"):
        bench.main(quick=True, json_path=str(tmp_path / "no" / "x.json"))
    with pytest.raises(ValueError, match="plot_path must be a path in an existing folder"):
        bench.main(quick=True, plot_path=str(tmp_path / "no" / "x.png"))
    with pytest.raises(ValueError, match="algorithms selects no algorithm"):
        bench.main(quick=True, algorithms=[" "])


@pytest.mark.parametrize("argv", [[], ["bench", "--fast"], ["demo", "extra"], ["info", "--size", "3"]], ids=str)
def test_usage_errors_are_one_line(capsys, argv):
    assert main(argv) == 2
    assert_one_line_error(capsys.readouterr().err, "gpuvec", "error:", "--help")


def test_interrupt_is_one_line(capsys, monkeypatch):
    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "main", interrupted)
    assert main(["bench", "--quick"]) == 130
    assert_one_line_error(capsys.readouterr().err, "gpuvec: interrupted")


# --------------------------------------------------------------------------- the core install (no extras)


def test_skipped_references_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    notes = bench.skipped_references(["rays", "mixture"])
    assert notes == [
        "note: mixture: skipping the reference cases timed against scikit-learn, which is not installed "
        "(pip install 'gpuvec[sklearn]')"
    ]
    assert bench.skipped_references(["rays", "rotations", "random"]) == []
    selected = bench.cases(quick=True, algorithms=["mixture"])
    assert selected and all(c.method == "gpuvec" for c in selected)
    for case in selected:
        assert callable(case.make())  # the gpuvec cases' setup never imports sklearn


def test_bench_quick_on_a_core_install_skips_sklearn_with_a_note(tmp_path):
    path = tmp_path / "core.json"
    r = run_cli(
        "bench",
        "--quick",
        "--only",
        "mixture,rotations",
        "--json",
        str(path),
        missing=("sklearn", "numba", "matplotlib"),
    )
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: mixture: skipping the reference cases timed against scikit-learn, which is not installed "
        "(pip install 'gpuvec[sklearn]')"
    ]
    assert "Traceback" not in r.stderr and "sklearn [numpy]" not in r.stdout
    assert "gmm 20 problems" in r.stdout and "is_rotation 20000 3x3" in r.stdout
    import json

    methods = {(c["algorithm"], c["method"]) for c in json.loads(path.read_text())["cases"]}
    assert ("mixture", "gpuvec") in methods and not any("sklearn" in m for _, m in methods)


def test_bench_plot_on_a_core_install_fails_before_running(tmp_path):
    r = run_cli("bench", "--quick", "--plot", str(tmp_path / "r.png"), missing=("matplotlib",))
    assert r.returncode == 2 and r.stdout == ""
    assert_one_line_error(
        r.stderr, "gpuvec bench: error: argument --plot: ", "needs matplotlib", "pip install 'gpuvec[plot]'"
    )


def test_dask_cases_are_skipped_with_a_note_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setattr(bench_grid, "installed", lambda module: module != "dask")
    assert bench.skipped_references(["dask"]) == [
        "note: dask: skipping the dask cases, dask is not installed (pip install 'gpuvec[dask]')"
    ]
    assert bench.cases(quick=True, algorithms=["dask"]) == []
