"""The package layout: serving code loads no training code or test fixtures.

Each check runs in a fresh interpreter, so that modules imported by other
tests do not hide an import.
"""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Training code, the tf.data pipeline and test fixtures.
FORBIDDEN = (
    "uegan_tf.train.trainer",
    "uegan_tf.train.summaries",
    "uegan_tf.train.__main__",
    "uegan_tf.data.pipeline",
    "uegan_tf.testing",
)


SERVING = (
    "uegan_tf.inference.stylizer",
    "uegan_tf.inference.stylize",
    "uegan_tf.inference.video",
    "uegan_tf.train.workdir",
    "uegan_tf.export",
    "uegan_tf.app",
)


@pytest.fixture(scope="module")
def loaded_after():
    """The `uegan_tf` modules loaded after importing each serving module in
    turn, in one fresh interpreter.

    Imports only add modules, so a forbidden module loaded by importing
    any one of them alone shows up here at the latest after that import
    (and the first module it shows up after is the culprit).
    """
    code = (
        "import importlib, json, sys\n"
        "out = {}\n"
        f"for m in {list(SERVING)!r}:\n"
        "    importlib.import_module(m)\n"
        "    out[m] = sorted(x for x in sys.modules\n"
        "                    if x.startswith('uegan_tf'))\n"
        "print(json.dumps(out))"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("module", SERVING)
def test_serving_loads_no_training_code(module, loaded_after):
    loaded = loaded_after[module]
    assert module in loaded
    assert not [m for m in loaded if m in FORBIDDEN], loaded


def test_one_format_table():
    from uegan_tf.config import EXPORT_FORMATS
    from uegan_tf.export import onnx
    from uegan_tf.export import tflite
    from uegan_tf.export.formats import FORMATS
    from uegan_tf.export.options import ExportOptions

    # The names are defined once (config: --format is checked without
    # TensorFlow); each row is its converter module's.
    assert EXPORT_FORMATS == ("tflite", "onnx")
    assert list(FORMATS) == list(EXPORT_FORMATS)
    assert FORMATS["tflite"].runner is tflite.TFLiteRunner
    assert FORMATS["onnx"].write_models is onnx.write_models
    assert FORMATS["tflite"].requires == ()
    with pytest.raises(ValueError, match="format must be in"):
        ExportOptions(out_dir="/tmp/x", formats=("coreml",)).validate()


def _readme_two_commands():
    """The two commands of the README's "Two commands" block."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = text.split("## Two commands", 1)[1].split("```bash", 1)[1]
    block = block.split("```", 1)[0]
    return [
        line.strip()
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_ci_runs_exactly_the_readme_test_command():
    install, tests = _readme_two_commands()
    assert install == (
        "pip install . && uegan stylize --examples --out_dir=stylized"
    )
    assert tests.startswith('pip install ".[dev]" && python -m pytest')
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        commands = [line.strip() for line in f if "pytest" in line]
    assert commands == [tests]
