"""bench/run_all.py: one report from the bench scripts' tables."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all():
    from absl import flags

    before = set(flags.FLAGS)
    spec = importlib.util.spec_from_file_location(
        "run_all", REPO / "bench" / "run_all.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Importing defines no flag: a test process may already have the same
    # names (uegan_tf.flags defines --out_dir), which absl refuses.
    assert set(flags.FLAGS) == before
    return module


def test_every_listed_script_exists(run_all):
    for script, _ in run_all.SCRIPTS.values():
        assert (REPO / "bench" / script).is_file(), script


def test_tables_are_runs_of_pipe_lines(run_all):
    text = "loading\n| a | b |\n|---|---|\n| 1 | 2 |\nwrote x\n| c |\n"
    assert run_all.markdown_tables(text) == [
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "| c |",
    ]
    assert run_all.markdown_tables("no table\n") == []


def test_extra_arguments_per_script(run_all):
    extra = run_all.parse_extra(
        ["inference:--sizes=256", "inference:--repeats=3"],
        ["inference", "train"],
    )
    assert extra == {"inference": ["--sizes=256", "--repeats=3"], "train": []}
    for bad in ("--sizes=256", "video:--x=1"):
        with pytest.raises(ValueError, match="NAME:ARG"):
            run_all.parse_extra([bad], ["inference", "train"])


def test_report_has_machine_tables_and_failures(run_all):
    machine = {
        "cpu": "AMD EPYC",
        "cpu_count": 2,
        "date": "2026-12-03T19:00:00+00:00",
        "native_bf16": False,
        "load_average": [0.25, 0.5, 0.5],
    }
    runs = {
        "inference": {
            "command": "python bench/bench_inference.py --out=x.json",
            "returncode": 0,
            "seconds": 61.4,
            "tables": ["| backend | ms |\n|---|---|\n| savedmodel | 609 |"],
        },
        "video": {
            "command": "python bench/bench_video.py --out=y.json",
            "returncode": 3,
            "seconds": 2.0,
            "tables": [],
        },
    }
    text = run_all.report_markdown(machine, runs)
    assert text.startswith(
        "# Benchmarks: AMD EPYC, 2 cores, 2026-12-03T19:00:00+00:00\n"
    )
    assert "load average at the start: 0.25" in text
    assert "instruction sets" not in text  # an old machine record
    machine.update(cpu_family_model="25/17", isa=["avx2", "avx512f"])
    assert (
        "CPU family/model 25/17; instruction sets: avx2 avx512f.\n"
        in run_all.report_markdown(machine, runs)
    )
    assert "## inference\n\n`python bench/bench_inference.py" in text
    assert "(61 s)" in text and "| savedmodel | 609 |" in text
    assert "## video" in text and "**failed** (exit 3)" in text
    assert text.index("## inference") < text.index("## video")


def test_unknown_script_is_one_line(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run_all.py"),
            "--only=nope",
            f"--out_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "unknown bench script(s): nope; known: train,pipeline,inference,"
        "precision,ops,memory,video,beam"
    ]
    assert list(tmp_path.iterdir()) == []


def test_benchlib_cpu_identity():
    spec = importlib.util.spec_from_file_location(
        "benchlib", REPO / "bench" / "benchlib.py"
    )
    benchlib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchlib)
    text = (
        "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\n"
        "model name\t: AMD EPYC\nflags\t\t: fpu avx2 fma avx512f "
        "avx512_bf16 avx512_vnni\nprocessor\t: 1\ncpu family\t: 99\n"
    )
    assert benchlib.cpu_identity(text) == (
        "AMD EPYC",
        "25/17",
        ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"],
    )
    assert benchlib.cpu_identity("") == (None, None, [])


def test_benchlib_markdown_table():
    spec = importlib.util.spec_from_file_location(
        "benchlib", REPO / "bench" / "benchlib.py"
    )
    benchlib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchlib)
    assert benchlib.markdown_table(["a", "b"], [[1, "x"], [2.5, ""]]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 |  |"
    )
    with pytest.raises(ValueError, match="2 columns, a row has 1"):
        benchlib.markdown_table(["a", "b"], [[1]])


def test_op_profile_counts_every_kernel_of_a_small_generator():
    """bench_op_profile: per-op kernel times of a width-8 UE generator at
    32²: the 21 convolutions (25 minus the 4 depthwise) run as oneDNN's
    kernels, the 24 norms' two means each, and the table ends with the sum
    of the times it lists."""
    from uegan_tf.models import build_generator

    sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location(
        "bench_op_profile", REPO / "bench" / "bench_op_profile.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ms, count = module.op_times(build_generator(width=8), 32, rounds=1)
    convs = {op: n for op, n in count.items() if "Conv2D" in op}
    assert sum(convs.values()) == 21, count
    assert count["Mean"] == 48 and count["Rsqrt"] == 24, count
    assert all(t >= 0 for t in ms.values()) and sum(ms.values()) > 0
    rows = module.table({"fp32": {"ms": ms, "count": count}}).splitlines()
    assert rows[0] == "| op | fp32 ms (share, kernels) |"
    assert rows[-1] == f"| sum of kernel times | {sum(ms.values()):.0f} |"
