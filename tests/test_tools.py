"""The maintainers' tools (`tools/*.py`): real scripts, flags from configs.

Each tool is run once as a real script (`--help`: it starts, lists its own
flags, and imports no TensorFlow); everything else calls its `cli`
in-process (`conftest.run_tool`). The tools' settings themselves are
tested in `test_flags.py`, each tool's work in the module of its library
(export, importers, data).
"""

import json
import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf
from absl import flags
from conftest import REPO
from conftest import load_tool
from conftest import run_tool

from uegan_tf import config
from uegan_tf import flags as uflags
from uegan_tf import registry
from uegan_tf.models import build_generator

TOOLS = {
    "export_tflite": config.ExportConfig,
    "import_animeganv2": config.ImportConfig,
    "bundle_style": config.BundleConfig,
    "inspect_tfrecords": config.InspectConfig,
}


@pytest.mark.parametrize("tool", list(TOOLS))
def test_help_of_the_real_script_imports_no_tensorflow(tool):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", f"tools/{tool}.py", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage:\n  python tools/{tool}.py ")
    # Its own flags only, each once (absl's --flagfile etc. are not listed).
    fv = flags.FlagValues()
    uflags.define_config_flags(TOOLS[tool], fv)
    listed = [
        line.split(":")[0].strip().replace("[no]", "")
        for line in result.stdout.split("\nflags:\n", 1)[1].splitlines()
        if line.startswith("  --")
    ]
    assert sorted(listed) == sorted(f"--{name}" for name in fv)
    # `-X importtime` writes one line per imported module to stderr.
    imported = [
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "uegan_tf.config" in imported
    assert not [
        m for m in imported if m.split(".")[0] in ("tensorflow", "keras")
    ]


def test_importing_a_tool_defines_no_flag():
    before = set(flags.FLAGS)
    for tool in TOOLS:
        assert callable(load_tool(tool).cli)
    assert set(flags.FLAGS) == before


@pytest.fixture
def workdir(tmp_path):
    """A training work dir of a tiny plain generator, checkpoint step 7."""
    keras.utils.set_random_seed(3)
    folder = tmp_path / "runs" / "tiny"
    folder.mkdir(parents=True)
    cfg = config.TrainConfig(
        workdir=str(folder),
        model=config.ModelConfig(unet=False, g_width=4),
    )
    (folder / "config.json").write_text(cfg.to_json())
    generator = build_generator(unet=False, width=4)
    ckpt = tf.train.Checkpoint(
        generator=generator, step=tf.Variable(7, dtype=tf.int64)
    )
    tf.train.CheckpointManager(ckpt, str(folder / "checkpoints"), 2).save(7)
    return folder


def test_bundle_style_writes_the_style(workdir, tmp_path, monkeypatch, capsys):
    bundled = tmp_path / "styles"  # not the package's own styles folder
    monkeypatch.setattr(registry, "BUNDLED_DIR", bundled)
    code, out, err = run_tool(
        capsys,
        "bundle_style",
        f"--workdir={workdir}",
        "--name=tiny",
        "--step=7",
        "--description=A test style.",
        "--licence=CC0",
    )
    assert code == 0, err
    folder = bundled / "tiny"
    assert out == f"bundled {workdir} step 7 as {folder}\n"
    meta = json.loads((folder / registry.STYLE_FILE).read_text())
    assert {k: v for k, v in meta.items() if k != "training_config"} == {
        "kind": "bundled",
        "description": "A test style.",
        "licence": "CC0",
        "trained_steps": 7,
        "unet": False,
        "upsample": "tf1",
        "source": "tiny step 7",
    }
    assert meta["training_config"]["model"]["g_width"] == 4
    saved = keras.models.load_model(folder / registry.GENERATOR_FILE)
    assert saved.count_params() > 0 and not saved.unet


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name=x"], "--workdir and --name are required"),
        (["--workdir=WORKDIR"], "--workdir and --name are required"),
        (
            ["--workdir=WORKDIR", "--name=x", "--step=8"],
            "no checkpoint for step 8 in WORKDIR/checkpoints",
        ),
        (
            ["--workdir=NOWHERE", "--name=x"],
            "NOWHERE is not a training work dir (no config.json)",
        ),
        (["--workdir=WORKDIR", "--name=x", "--step=two"], "flag --step=two"),
    ],
)
def test_bundle_style_errors_are_one_line_exit_2(
    workdir, tmp_path, monkeypatch, capsys, args, message
):
    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path / "styles")
    paths = {"NOWHERE": str(tmp_path / "nowhere"), "WORKDIR": str(workdir)}
    for key, path in paths.items():
        args = [a.replace(key, path) for a in args]
        message = message.replace(key, path)
    code, out, err = run_tool(capsys, "bundle_style", *args)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"error: {message}")
    assert not (tmp_path / "styles").exists()
