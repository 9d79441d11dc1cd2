"""Test setup shared by every test module.

- Two logical CPU devices are configured before TensorFlow initialises, so
  that distributed tests run a real 2-replica `MirroredStrategy` on CPU.
- absl flags are marked as parsed (pytest does not parse argv through absl).
- `--run-slow` enables tests marked `slow` (skipped by default).
- Garbage collection runs less often (see below).
"""

import gc
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration()] * 2,
    )
except RuntimeError:  # TF already initialised by another plugin
    pass

flags.FLAGS.mark_as_parsed()

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def parse_train_args(*args):
    """The `TrainConfig` that `python -m uegan_tf.train ARGS...` would use.

    Call from the repository root (nested flagfile paths are
    repo-relative). A fresh flag registry each time: other binaries' flags
    defined in this test process (stylize's --precision) never interfere.
    """
    from uegan_tf import flags as uflags

    fv = flags.FlagValues()
    uflags.define_train_flags(fv)
    fv(["train", *args])
    return uflags.train_config_from_flags(fv)


_TOOLS = {}


def load_tool(name):
    """`tools/<name>.py` as a module, to call its `cli` in-process.

    Importing a tool defines no flag: `cli(argv, flags.FlagValues())`
    parses into a registry of its own. Loaded once per test process.
    """
    import importlib.util
    import sys

    if name not in _TOOLS:
        tools = str(REPO / "tools")
        if tools not in sys.path:  # the tools import their `_bootstrap`
            sys.path.append(tools)
        spec = importlib.util.spec_from_file_location(
            f"tools_{name}", REPO / "tools" / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[name] = module
    return _TOOLS[name]


def run_tool(capsys, name, *args):
    """`python tools/<name>.py ARGS...` in-process: (exit code, stdout,
    stderr)."""
    code = load_tool(name).cli([f"{name}.py", *args], flags.FlagValues())
    out, err = capsys.readouterr()
    return code, out, err


def shared_path(*parts):
    """Path under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared folder is not checked out)")
    return path


@pytest.fixture(scope="session")
def two_replicas():
    """One 2-replica MirroredStrategy on the two logical CPUs, shared.

    Shared by every test: separate MirroredStrategy objects in one process
    reuse collective instance keys, and a second strategy's all-reduce can
    then collide with the first one's.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture
def artifacts_dir():
    """A folder kept after the run for screenshots and sample outputs."""
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def start(argv, **kwargs):
    """Start `argv` in the background, output captured as text.

    For independent subprocesses of one test: start them all, then
    `finish` each, so that their TensorFlow imports (~5 s each) overlap
    instead of adding up. `kwargs` go to `subprocess.Popen` (cwd, env).
    """
    import subprocess

    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(proc, timeout):
    """Wait for a `start`ed process: a `subprocess.CompletedProcess`.

    Killed (and `subprocess.TimeoutExpired` raised) after `timeout`
    seconds, as `subprocess.run` does.
    """
    import subprocess

    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def peak_rss_of(script, timeout):
    """Run a Python snippet in a fresh interpreter (this repo importable).

    The peak comes from `testing.peak_rss_bytes` (the child's own
    high-water mark; `ru_maxrss` would include this pytest process's peak)
    printed after the script.

    Returns:
        (completed process, peak resident set size in bytes).
    """
    import subprocess
    import sys

    code = (
        script
        + "\nfrom uegan_tf.testing import peak_rss_bytes\n"
        + "print(peak_rss_bytes())\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res, int(res.stdout.strip().splitlines()[-1])


# Fewer garbage-collector passes. Tracing tf.functions and building Keras
# models allocate millions of small objects, and the default thresholds
# (700, 10, 10) then run full collections over a heap that grows with every
# module-scoped model: measured 34 s of 276 s in test_trainer + test_export.
# Objects alive after collection are frozen out of the scans; cyclic garbage
# waits longer (24 GB here). Test process only: the library keeps defaults.
gc.set_threshold(100_000, 50, 100)


def pytest_collection_finish(session):
    gc.collect()
    gc.freeze()
