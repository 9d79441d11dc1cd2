"""The training work-dir format, readable without the trainer.

A work dir (`--workdir`) holds `config.json` (the run's `TrainConfig`),
`checkpoints/` (`ckpt-N` written by `tf.train.CheckpointManager`), samples
and logs. The trainer writes it; the stylize command, the app, evaluation
and export read generators back through `load_generator_from_workdir`
without importing the training loop or the data pipeline.
"""

import json
import pathlib

import tensorflow as tf

from uegan_tf.config import TrainConfig

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def load_workdir_config(workdir):
    """The `TrainConfig` saved in a work directory (None if there is none)."""
    path = pathlib.Path(workdir) / CONFIG_FILE
    if not path.exists():
        return None
    return TrainConfig.from_dict(json.loads(path.read_text()))


def load_generator_from_workdir(workdir, step=None):
    """Build the generator of a training work dir and restore its weights.

    Args:
        workdir: a folder with `config.json` and `checkpoints/`.
        step: restore this step's checkpoint (default: the latest).

    Returns:
        `(generator, info)` with info {"step", "checkpoint", "config"}.

    Raises:
        FileNotFoundError: not a work dir, or no (such) checkpoint.
        ValueError: the checkpoint files are corrupt or truncated.
    """
    from uegan_tf.importers import corrupt_checkpoint_as_value_error
    from uegan_tf.models import build_generator

    workdir = pathlib.Path(workdir)
    cfg = load_workdir_config(workdir)
    if cfg is None:
        raise FileNotFoundError(
            f"{workdir} is not a training work dir (no {CONFIG_FILE})"
        )
    ckpt_dir = workdir / CHECKPOINT_DIR
    if step is None:
        path = tf.train.latest_checkpoint(str(ckpt_dir))
    else:
        path = str(ckpt_dir / f"ckpt-{step}")
        if not tf.io.gfile.exists(path + ".index"):
            path = None
    if path is None:
        raise FileNotFoundError(
            f"no checkpoint{'' if step is None else f' for step {step}'} in "
            f"{ckpt_dir}"
        )
    generator = build_generator(
        unet=cfg.model.unet,
        upsample=cfg.model.upsample,
        width=cfg.model.g_width,
    )
    with corrupt_checkpoint_as_value_error(path):
        tf.train.Checkpoint(generator=generator).read(path).expect_partial()
        reader = tf.train.load_checkpoint(path)
        saved_step = int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    return generator, {"step": saved_step, "checkpoint": path, "config": cfg}


__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "load_generator_from_workdir",
    "load_workdir_config",
]
